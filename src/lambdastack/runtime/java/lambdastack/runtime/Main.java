package lambdastack.runtime;

import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.Client;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.LambdaRuntime;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The Java runtime client: loads the handler in the init phase, then polls the Runtime API
 * for invocations and posts their results. The function's classes load in a class loader
 * whose parent holds this runtime, so a jar that bundles its own copy of the Lambda
 * interfaces still implements the runtime's.
 */
public final class Main {
    private static final String API = "http://" + System.getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/";

    private static final java.io.FilenameFilter JARS = new java.io.FilenameFilter() {
        @Override
        public boolean accept(File dir, String name) {
            return name.endsWith(".jar");
        }
    };

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        Handler handler;
        try {
            handler = Handler.load(System.getenv("_HANDLER"), functionClassLoader());
        } catch (Throwable t) {
            Throwable e = Handler.unwrap(t);
            report(e);
            post(API + "init/error", errorDocument(e), errorType(e));
            System.exit(1);
            return;
        }
        while (true) {
            HttpURLConnection next = (HttpURLConnection) new URL(API + "invocation/next").openConnection();
            next.setReadTimeout(0);
            byte[] event;
            try (InputStream in = next.getInputStream()) {
                event = in.readAllBytes();
            }
            String requestId = next.getHeaderField("Lambda-Runtime-Aws-Request-Id");
            String trace = next.getHeaderField("Lambda-Runtime-Trace-Id");
            if (trace != null) {
                System.setProperty("com.amazonaws.xray.traceHeader", trace);
            }
            Invocation context = new Invocation(requestId, next);
            byte[] result;
            try {
                result = handler.invoke(event, context);
            } catch (Throwable t) {
                Throwable e = Handler.unwrap(t);
                report(e);
                System.out.flush();
                System.err.flush();
                post(API + "invocation/" + requestId + "/error", errorDocument(e), errorType(e));
                if (e instanceof OutOfMemoryError) {
                    // The heap may be left in any state: the environment is not used again.
                    System.exit(1);
                }
                continue;
            }
            System.out.flush();
            System.err.flush();
            post(API + "invocation/" + requestId + "/response", result, null);
        }
    }

    private static ClassLoader functionClassLoader() throws IOException {
        String task = System.getenv().getOrDefault("LAMBDA_TASK_ROOT", "/var/task");
        List<URL> urls = new ArrayList<>();
        urls.add(new File(task).toURI().toURL());
        for (String folder : new String[] {task + "/lib", "/opt/java/lib"}) {
            File[] jars = new File(folder).listFiles(JARS); // (no lambda: LambdaMetafactory costs a cold start)
            if (jars != null) {
                Arrays.sort(jars);
                for (File jar : jars) {
                    urls.add(jar.toURI().toURL());
                }
            }
        }
        // An uber-jar uploaded as the deployment package is unpacked at the root: already covered.
        ClassLoader loader = new URLClassLoader(urls.toArray(new URL[0]), Main.class.getClassLoader());
        Thread.currentThread().setContextClassLoader(loader);
        return loader;
    }

    private static void report(Throwable e) {
        // Lambda's Java runtime writes the error document of an unhandled exception to the log.
        System.err.println(new String(errorDocument(e), StandardCharsets.UTF_8));
        System.err.flush();
    }

    private static String errorType(Throwable e) {
        return e.getClass().getName();
    }

    static byte[] errorDocument(Throwable e) {
        return Json.write(errorMap(e, 0)).getBytes(StandardCharsets.UTF_8);
    }

    private static Map<String, Object> errorMap(Throwable e, int depth) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("errorMessage", e.getMessage() != null ? e.getMessage() : e.getClass().getName());
        m.put("errorType", e.getClass().getName());
        List<String> trace = new ArrayList<>();
        for (StackTraceElement element : e.getStackTrace()) {
            if (element.getClassName().startsWith("lambdastack.runtime.")
                    || element.getClassName().startsWith("jdk.internal.reflect.")
                    || element.getClassName().startsWith("java.lang.reflect.Method")) {
                continue;
            }
            trace.add(element.toString());
        }
        m.put("stackTrace", trace);
        if (e.getCause() != null && e.getCause() != e && depth < 20) {
            m.put("cause", errorMap(e.getCause(), depth + 1));
        }
        return m;
    }

    private static void post(String url, byte[] body, String errorType) throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
        c.setRequestMethod("POST");
        c.setDoOutput(true);
        c.setFixedLengthStreamingMode(body.length);
        c.setRequestProperty("Content-Type", "application/json");
        if (errorType != null) {
            c.setRequestProperty("Lambda-Runtime-Function-Error-Type", errorType);
        }
        try (OutputStream out = c.getOutputStream()) {
            out.write(body);
        }
        try (InputStream in = c.getResponseCode() < 400 ? c.getInputStream() : c.getErrorStream()) {
            if (in != null) {
                in.readAllBytes();
            }
        }
    }

    /** The Context of one invocation, from the headers of its /next response. */
    static final class Invocation implements Context {
        private final String requestId;
        private final String arn;
        private final long deadline;
        private final ClientContext clientContext;
        private final CognitoIdentity identity;

        Invocation(String requestId, HttpURLConnection next) {
            this.requestId = requestId;
            this.arn = next.getHeaderField("Lambda-Runtime-Invoked-Function-Arn");
            String d = next.getHeaderField("Lambda-Runtime-Deadline-Ms");
            this.deadline = d == null ? 0 : Long.parseLong(d);
            this.clientContext = clientContext(next.getHeaderField("Lambda-Runtime-Client-Context"));
            this.identity = identity(next.getHeaderField("Lambda-Runtime-Cognito-Identity"));
        }

        @Override
        public String getAwsRequestId() {
            return requestId;
        }

        @Override
        public String getLogGroupName() {
            return System.getenv("AWS_LAMBDA_LOG_GROUP_NAME");
        }

        @Override
        public String getLogStreamName() {
            return System.getenv("AWS_LAMBDA_LOG_STREAM_NAME");
        }

        @Override
        public String getFunctionName() {
            return System.getenv("AWS_LAMBDA_FUNCTION_NAME");
        }

        @Override
        public String getFunctionVersion() {
            return System.getenv("AWS_LAMBDA_FUNCTION_VERSION");
        }

        @Override
        public String getInvokedFunctionArn() {
            return arn;
        }

        @Override
        public CognitoIdentity getIdentity() {
            return identity;
        }

        @Override
        public ClientContext getClientContext() {
            return clientContext;
        }

        @Override
        public int getRemainingTimeInMillis() {
            return (int) Math.max(0, deadline - System.currentTimeMillis());
        }

        @Override
        public int getMemoryLimitInMB() {
            String m = System.getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
            return m == null ? 128 : Integer.parseInt(m);
        }

        @Override
        public LambdaLogger getLogger() {
            return LambdaRuntime.getLogger();
        }

        private static Map<?, ?> object(String json) {
            if (json == null || json.isEmpty()) {
                return null;
            }
            Object v = Json.parse(json);
            return v instanceof Map ? (Map<?, ?>) v : null;
        }

        private static String text(Map<?, ?> m, String key) {
            Object v = m == null ? null : m.get(key);
            return v == null ? null : v.toString();
        }

        @SuppressWarnings("unchecked")
        private static Map<String, String> strings(Object v) {
            Map<String, String> out = new LinkedHashMap<>();
            if (v instanceof Map) {
                for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                    out.put(String.valueOf(e.getKey()), e.getValue() == null ? null : String.valueOf(e.getValue()));
                }
            }
            return out;
        }

        private static CognitoIdentity identity(String json) {
            Map<?, ?> m = object(json);
            String id = text(m, "cognitoIdentityId");
            String pool = text(m, "cognitoIdentityPoolId");
            return new CognitoIdentity() {
                @Override
                public String getIdentityId() {
                    return id;
                }

                @Override
                public String getIdentityPoolId() {
                    return pool;
                }
            };
        }

        private static ClientContext clientContext(String json) {
            Map<?, ?> m = object(json);
            if (m == null) {
                return null;
            }
            Map<?, ?> c = m.get("client") instanceof Map ? (Map<?, ?>) m.get("client") : null;
            Client client = c == null ? null : new Client() {
                @Override
                public String getInstallationId() {
                    return text(c, "installation_id");
                }

                @Override
                public String getAppTitle() {
                    return text(c, "app_title");
                }

                @Override
                public String getAppVersionName() {
                    return text(c, "app_version_name");
                }

                @Override
                public String getAppVersionCode() {
                    return text(c, "app_version_code");
                }

                @Override
                public String getAppPackageName() {
                    return text(c, "app_package_name");
                }
            };
            Map<String, String> custom = strings(m.get("custom"));
            Map<String, String> env = strings(m.get("env"));
            return new ClientContext() {
                @Override
                public Client getClient() {
                    return client;
                }

                @Override
                public Map<String, String> getCustom() {
                    return custom;
                }

                @Override
                public Map<String, String> getEnvironment() {
                    return env;
                }
            };
        }
    }

    static InputStream stream(byte[] event) {
        return new ByteArrayInputStream(event);
    }

    static ByteArrayOutputStream sink() {
        return new ByteArrayOutputStream();
    }
}
