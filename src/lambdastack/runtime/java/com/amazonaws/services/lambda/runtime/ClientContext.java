package com.amazonaws.services.lambda.runtime;

import java.util.Map;

/** The mobile client's context passed with an invocation. */
public interface ClientContext {
    Client getClient();

    Map<String, String> getCustom();

    Map<String, String> getEnvironment();
}
