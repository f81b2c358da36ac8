"""What HTTP fronts (Function URLs, HTTP APIs) share: the request, the payload formats, CORS."""
