"""The platform's building blocks, one ComponentResource per file; pure renderers beside them."""
