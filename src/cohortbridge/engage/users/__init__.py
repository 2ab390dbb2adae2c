"""User profiles: identifiers, attributes, event and purchase history, the /users/* endpoints."""
