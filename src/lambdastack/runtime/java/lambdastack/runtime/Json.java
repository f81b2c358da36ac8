package lambdastack.runtime;

import java.lang.reflect.Array;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * JSON with the JDK alone: text to a tree of Map/List/String/Number/Boolean/null, a tree to a
 * handler's declared type (POJOs by setters or public fields, matched case-insensitively,
 * unknown properties ignored), and any value back to text (POJO properties that are null left out).
 */
final class Json {
    private final String s;
    private int i;

    private Json(String s) {
        this.s = s;
    }

    static Object parse(String text) {
        Json p = new Json(text);
        p.ws();
        if (p.i >= p.s.length()) {
            return null;
        }
        Object v = p.value();
        p.ws();
        if (p.i != p.s.length()) {
            throw p.fail("unexpected character");
        }
        return v;
    }

    private IllegalArgumentException fail(String why) {
        return new IllegalArgumentException("Could not parse JSON: " + why + " at offset " + i);
    }

    private void ws() {
        while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
            i++;
        }
    }

    private Object value() {
        if (i >= s.length()) {
            throw fail("unexpected end");
        }
        char c = s.charAt(i);
        switch (c) {
            case '{': {
                i++;
                Map<String, Object> m = new LinkedHashMap<>();
                ws();
                if (peek('}')) {
                    return m;
                }
                while (true) {
                    ws();
                    if (i >= s.length() || s.charAt(i) != '"') {
                        throw fail("expected a string");
                    }
                    String k = string();
                    ws();
                    expect(':');
                    ws();
                    m.put(k, value());
                    ws();
                    if (peek('}')) {
                        return m;
                    }
                    expect(',');
                }
            }
            case '[': {
                i++;
                List<Object> l = new ArrayList<>();
                ws();
                if (peek(']')) {
                    return l;
                }
                while (true) {
                    ws();
                    l.add(value());
                    ws();
                    if (peek(']')) {
                        return l;
                    }
                    expect(',');
                }
            }
            case '"':
                return string();
            default:
                if (s.startsWith("true", i)) {
                    i += 4;
                    return Boolean.TRUE;
                }
                if (s.startsWith("false", i)) {
                    i += 5;
                    return Boolean.FALSE;
                }
                if (s.startsWith("null", i)) {
                    i += 4;
                    return null;
                }
                return number();
        }
    }

    private boolean peek(char c) {
        if (i < s.length() && s.charAt(i) == c) {
            i++;
            return true;
        }
        return false;
    }

    private void expect(char c) {
        if (!peek(c)) {
            throw fail("expected '" + c + "'");
        }
    }

    private String string() {
        i++;
        StringBuilder b = new StringBuilder();
        while (true) {
            if (i >= s.length()) {
                throw fail("unterminated string");
            }
            char c = s.charAt(i++);
            if (c == '"') {
                return b.toString();
            }
            if (c != '\\') {
                b.append(c);
                continue;
            }
            char e = s.charAt(i++);
            switch (e) {
                case 'n': b.append('\n'); break;
                case 't': b.append('\t'); break;
                case 'r': b.append('\r'); break;
                case 'b': b.append('\b'); break;
                case 'f': b.append('\f'); break;
                case 'u': b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; break;
                default: b.append(e);
            }
        }
    }

    private Object number() {
        int start = i;
        boolean real = false;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c == '.' || c == 'e' || c == 'E') {
                real = true;
            } else if (!(c == '-' || c == '+' || (c >= '0' && c <= '9'))) {
                break;
            }
            i++;
        }
        String t = s.substring(start, i);
        if (t.isEmpty()) {
            throw fail("unexpected character");
        }
        if (real) {
            return Double.parseDouble(t);
        }
        if (t.length() < 19) {
            long n = Long.parseLong(t);
            return n == (int) n ? (Object) (int) n : (Object) n;
        }
        BigInteger n = new BigInteger(t);
        return n.bitLength() < 64 ? (Object) n.longValue() : n;
    }

    // ------------------------------------------------------------------ tree to a declared type

    static Object convert(Object v, Type type) throws ReflectiveOperationException {
        Class<?> raw = rawClass(type);
        if (v == null) {
            if (raw.isPrimitive()) {
                return raw == boolean.class ? Boolean.FALSE : convert(0, type);
            }
            return null;
        }
        if (raw == Object.class || (raw.isInstance(v) && !(v instanceof Map) && !(v instanceof Collection))) {
            return v;
        }
        if (raw == String.class) {
            if (v instanceof Map || v instanceof List) {
                throw new IllegalArgumentException("Cannot deserialize a JSON " + (v instanceof Map ? "object" : "array")
                        + " into java.lang.String");
            }
            return String.valueOf(v);
        }
        if (raw == boolean.class || raw == Boolean.class) {
            return v instanceof Boolean ? v : Boolean.valueOf(String.valueOf(v));
        }
        if (raw == char.class || raw == Character.class) {
            return String.valueOf(v).charAt(0);
        }
        if (raw.isPrimitive() || Number.class.isAssignableFrom(raw)) {
            BigDecimal d = v instanceof Number ? new BigDecimal(v.toString()) : new BigDecimal(String.valueOf(v));
            if (raw == int.class || raw == Integer.class) return d.intValue();
            if (raw == long.class || raw == Long.class) return d.longValue();
            if (raw == double.class || raw == Double.class) return d.doubleValue();
            if (raw == float.class || raw == Float.class) return d.floatValue();
            if (raw == short.class || raw == Short.class) return d.shortValue();
            if (raw == byte.class || raw == Byte.class) return d.byteValue();
            if (raw == BigInteger.class) return d.toBigInteger();
            if (raw == BigDecimal.class) return d;
            return v;
        }
        if (raw.isEnum()) {
            for (Object c : raw.getEnumConstants()) {
                if (((Enum<?>) c).name().equals(String.valueOf(v))) {
                    return c;
                }
            }
            throw new IllegalArgumentException("No enum constant " + raw.getName() + "." + v);
        }
        if (raw == Date.class && v instanceof Number) {
            return new Date(((Number) v).longValue());
        }
        if (raw.isArray()) {
            List<?> l = asList(v, raw);
            Type item = type instanceof GenericArrayType ? ((GenericArrayType) type).getGenericComponentType()
                    : raw.getComponentType();
            Object a = Array.newInstance(raw.getComponentType(), l.size());
            for (int k = 0; k < l.size(); k++) {
                Array.set(a, k, convert(l.get(k), item));
            }
            return a;
        }
        if (Collection.class.isAssignableFrom(raw)) {
            List<?> l = asList(v, raw);
            Type item = typeArgument(type, 0);
            Collection<Object> c = Set.class.isAssignableFrom(raw) ? new HashSet<>() : new ArrayList<>();
            for (Object o : l) {
                c.add(convert(o, item));
            }
            return c;
        }
        if (!(v instanceof Map)) {
            throw new IllegalArgumentException("Cannot deserialize " + describe(v) + " into " + raw.getName());
        }
        Map<?, ?> m = (Map<?, ?>) v;
        if (Map.class.isAssignableFrom(raw)) {
            Type item = typeArgument(type, 1);
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : m.entrySet()) {
                out.put((String) e.getKey(), convert(e.getValue(), item));
            }
            return out;
        }
        return pojo(m, raw);
    }

    private static String describe(Object v) {
        return v instanceof String ? "a JSON string" : v instanceof List ? "a JSON array" : "JSON value " + v;
    }

    private static List<?> asList(Object v, Class<?> raw) {
        if (!(v instanceof List)) {
            throw new IllegalArgumentException("Cannot deserialize " + describe(v) + " into " + raw.getName());
        }
        return (List<?>) v;
    }

    private static Object pojo(Map<?, ?> m, Class<?> raw) throws ReflectiveOperationException {
        java.lang.reflect.Constructor<?> ctor = raw.getDeclaredConstructor();
        ctor.setAccessible(true);
        Object o = ctor.newInstance();
        Map<String, Method> setters = new LinkedHashMap<>();
        for (Method method : raw.getMethods()) {
            if (method.getName().startsWith("set") && method.getParameterCount() == 1 && !Modifier.isStatic(method.getModifiers())) {
                setters.putIfAbsent(method.getName().substring(3).toLowerCase(Locale.ROOT), method);
            }
        }
        Map<String, Field> fields = new LinkedHashMap<>();
        for (Field f : raw.getFields()) {
            if (!Modifier.isStatic(f.getModifiers()) && !Modifier.isFinal(f.getModifiers())) {
                fields.putIfAbsent(f.getName().toLowerCase(Locale.ROOT), f);
            }
        }
        for (Map.Entry<?, ?> e : m.entrySet()) {
            String key = String.valueOf(e.getKey()).toLowerCase(Locale.ROOT);
            Method setter = setters.get(key);
            if (setter != null) {
                setter.invoke(o, convert(e.getValue(), setter.getGenericParameterTypes()[0]));
                continue;
            }
            Field f = fields.get(key);
            if (f != null) {
                f.set(o, convert(e.getValue(), f.getGenericType()));
            }
        }
        return o;
    }

    private static Class<?> rawClass(Type t) {
        if (t instanceof Class) {
            return (Class<?>) t;
        }
        if (t instanceof ParameterizedType) {
            return rawClass(((ParameterizedType) t).getRawType());
        }
        if (t instanceof GenericArrayType) {
            return Array.newInstance(rawClass(((GenericArrayType) t).getGenericComponentType()), 0).getClass();
        }
        return Object.class;
    }

    private static Type typeArgument(Type t, int index) {
        if (t instanceof ParameterizedType) {
            Type[] args = ((ParameterizedType) t).getActualTypeArguments();
            if (index < args.length) {
                return args[index];
            }
        }
        return Object.class;
    }

    // ------------------------------------------------------------------ any value to text

    static String write(Object v) {
        StringBuilder b = new StringBuilder();
        try {
            write(b, v, 0);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("Could not serialize the handler's output: " + e, e);
        }
        return b.toString();
    }

    private static void write(StringBuilder b, Object v, int depth) throws ReflectiveOperationException {
        if (depth > 200) {
            throw new IllegalStateException("Could not serialize the handler's output: nested too deeply (a cycle?)");
        }
        if (v == null) {
            b.append("null");
        } else if (v instanceof String || v instanceof Character || v instanceof Enum) {
            quote(b, v instanceof Enum ? ((Enum<?>) v).name() : v.toString());
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                quote(b, v.toString());
            } else {
                b.append(v);
            }
        } else if (v instanceof Number || v instanceof Boolean) {
            b.append(v);
        } else if (v instanceof Date) {
            b.append(((Date) v).getTime());
        } else if (v instanceof Map) {
            b.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) b.append(',');
                first = false;
                quote(b, String.valueOf(e.getKey()));
                b.append(':');
                write(b, e.getValue(), depth + 1);
            }
            b.append('}');
        } else if (v instanceof Iterable || v.getClass().isArray()) {
            b.append('[');
            if (v instanceof Iterable) {
                boolean first = true;
                for (Object o : (Iterable<?>) v) {
                    if (!first) b.append(',');
                    first = false;
                    write(b, o, depth + 1);
                }
            } else {
                for (int k = 0; k < Array.getLength(v); k++) {
                    if (k > 0) b.append(',');
                    write(b, Array.get(v, k), depth + 1);
                }
            }
            b.append(']');
        } else {
            writePojo(b, v, depth);
        }
    }

    private static void writePojo(StringBuilder b, Object v, int depth) throws ReflectiveOperationException {
        Map<String, Object> props = new LinkedHashMap<>();
        for (Field f : v.getClass().getFields()) {
            if (!Modifier.isStatic(f.getModifiers())) {
                props.put(f.getName(), f.get(v));
            }
        }
        for (Method m : v.getClass().getMethods()) {
            if (Modifier.isStatic(m.getModifiers()) || m.getParameterCount() != 0 || m.getDeclaringClass() == Object.class) {
                continue;
            }
            String n = m.getName();
            String prop = null;
            if (n.startsWith("get") && n.length() > 3 && m.getReturnType() != void.class) {
                prop = n.substring(3);
            } else if (n.startsWith("is") && n.length() > 2 && (m.getReturnType() == boolean.class || m.getReturnType() == Boolean.class)) {
                prop = n.substring(2);
            }
            if (prop != null) {
                m.setAccessible(true);
                props.put(decapitalize(prop), m.invoke(v));
            }
        }
        b.append('{');
        boolean first = true;
        for (Map.Entry<String, Object> e : props.entrySet()) {
            if (e.getValue() == null) {
                continue;
            }
            if (!first) b.append(',');
            first = false;
            quote(b, e.getKey());
            b.append(':');
            write(b, e.getValue(), depth + 1);
        }
        b.append('}');
    }

    private static String decapitalize(String name) {
        if (name.length() > 1 && Character.isUpperCase(name.charAt(1)) && Character.isUpperCase(name.charAt(0))) {
            return name;
        }
        return Character.toLowerCase(name.charAt(0)) + name.substring(1);
    }

    static void quote(StringBuilder b, String s) {
        b.append('"');
        for (int k = 0; k < s.length(); k++) {
            char c = s.charAt(k);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        b.append('"');
    }
}
