"""The OpenAPI 3.1 document, as data: shared pieces in common.py, one module per resource, the builder in
document.py that walks routing.ROUTES."""
