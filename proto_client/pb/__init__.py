"""Python modules generated from the `.proto` files beside them; regenerate with `python -m proto_client.codegen`."""
