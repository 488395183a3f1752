"""The built-in simulated crowd vendor: an HTTP server (``server``) and its connector (``client``)."""
