"""`-D`: the Dockerfile and build context that rebuild a traced program's environment."""
