"""GeoPhys-style verifier (work in progress, issue 15): the trajectory statistics of per-frame
embeddings. Not a registry entry yet (no ``spec.py``): the encoder and the fusion rule come next."""
