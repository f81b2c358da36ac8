package lambdastack.runtime;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.nio.charset.StandardCharsets;

/**
 * A function's handler as Lambda resolves it: `pkg.Class::method`, or `pkg.Class` naming a
 * RequestHandler or RequestStreamHandler. The class initializes and its instance is made
 * once, in the init phase; the instance serves every invocation of the environment.
 */
final class Handler {
    private final Object instance;
    private final Method method;
    private final boolean stream;
    private final boolean withContext;
    private final Type inputType;

    private Handler(Object instance, Method method) {
        this.instance = instance;
        this.method = method;
        Class<?>[] p = method.getParameterTypes();
        this.stream = p.length >= 2 && InputStream.class.isAssignableFrom(p[0]) && OutputStream.class.isAssignableFrom(p[1]);
        this.withContext = stream ? p.length == 3 : p.length == 2;
        this.inputType = p.length == 0 ? null : method.getGenericParameterTypes()[0];
    }

    static Handler load(String spec, ClassLoader loader) throws Throwable {
        if (spec == null || spec.isEmpty()) {
            throw new IllegalArgumentException("No handler is configured (_HANDLER is empty)");
        }
        int sep = spec.indexOf("::");
        String className = sep < 0 ? spec : spec.substring(0, sep);
        Class<?> cls;
        try {
            cls = Class.forName(className, true, loader);
        } catch (ClassNotFoundException e) {
            throw new ClassNotFoundException("Class not found: " + className, e);
        }
        Method method;
        if (sep < 0) {
            String name = RequestStreamHandler.class.isAssignableFrom(cls) || RequestHandler.class.isAssignableFrom(cls)
                    ? "handleRequest" : null;
            if (name == null) {
                throw new NoSuchMethodException("Class " + className
                        + " does not implement RequestHandler or RequestStreamHandler with the right signature");
            }
            method = find(cls, name, spec);
        } else {
            method = find(cls, spec.substring(sep + 2), spec);
        }
        Object instance = null;
        if (!Modifier.isStatic(method.getModifiers())) {
            java.lang.reflect.Constructor<?> ctor = cls.getDeclaredConstructor();
            ctor.setAccessible(true);
            instance = ctor.newInstance();
        }
        method.setAccessible(true);
        return new Handler(instance, method);
    }

    /** Of the public methods so named, the one with the most parameters (at most 3); bridges never. */
    private static Method find(Class<?> cls, String name, String spec) throws NoSuchMethodException {
        Method best = null;
        for (Method m : cls.getMethods()) {
            if (!m.getName().equals(name) || m.isBridge() || m.getParameterCount() > 3) {
                continue;
            }
            if (m.getParameterCount() == 3 && !isStream(m)) {
                continue;
            }
            if (best == null || m.getParameterCount() > best.getParameterCount()
                    || (m.getParameterCount() == best.getParameterCount() && best.getParameterTypes()[0] == Object.class)) {
                best = m;
            }
        }
        if (best == null) {
            throw new NoSuchMethodException("No public method named " + name + " with appropriate method signature found on class "
                    + cls.getName());
        }
        return best;
    }

    private static boolean isStream(Method m) {
        Class<?>[] p = m.getParameterTypes();
        return InputStream.class.isAssignableFrom(p[0]) && OutputStream.class.isAssignableFrom(p[1])
                && Context.class.isAssignableFrom(p[2]);
    }

    byte[] invoke(byte[] event, Context context) throws Throwable {
        try {
            if (stream) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                InputStream in = Main.stream(event);
                if (withContext) {
                    method.invoke(instance, in, out, context);
                } else {
                    method.invoke(instance, in, out);
                }
                return out.toByteArray();
            }
            Object result;
            if (inputType == null) {
                result = method.invoke(instance);
            } else {
                Object input;
                if (Context.class.equals(inputType) && !withContext) {
                    result = method.invoke(instance, context);
                    return Json.write(result).getBytes(StandardCharsets.UTF_8);
                }
                if (inputType == InputStream.class) {
                    input = Main.stream(event);
                } else {
                    input = Json.convert(Json.parse(new String(event, StandardCharsets.UTF_8)), inputType);
                }
                result = withContext ? method.invoke(instance, input, context) : method.invoke(instance, input);
            }
            if (method.getReturnType() == void.class) {
                return "null".getBytes(StandardCharsets.UTF_8);
            }
            return Json.write(result).getBytes(StandardCharsets.UTF_8);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    static Throwable unwrap(Throwable t) {
        while ((t instanceof InvocationTargetException || t instanceof ExceptionInInitializerError) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }
}
