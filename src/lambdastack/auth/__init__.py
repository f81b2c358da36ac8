"""Who may call the server's APIs: access keys (`lambdastack keys`) and the SigV4 check of `serve --auth sigv4`."""
