"""One module per part of the portal; each adds its routes to the portal's router."""
