"""Function URLs: HTTP requests at http://<url-id>.lambda-url.<region>.<host>:<port>/ become
invocations with API Gateway's payload format 2.0 (payload.py), served by this same server
(frontend.py)."""
