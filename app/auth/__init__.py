"""Sign-in for every route, callback, download and launch, one way per module:

- ``plain``: ``TRELLIS_AUTH=user:password`` (basic auth, passwords in the environment: for a quick try);
- ``users_file``: a file of salted argon2 hashes written by ``trellis users add NAME`` (basic auth);
- ``proxy``: the user a trusted reverse proxy names in a header (``X-Forwarded-User``);
- ``mlflow_users``: the MLflow server's own users and permissions (its basic-auth app).

``base`` holds the small interface they share and the Flask hook; ``create`` picks one from the environment.
"""
