"""Sequential torch architectures as search-space values: layers, validity, a compact text, REMAP's Markov
chain sampler, ablations, variations and a structural distance. Only ``torch_model`` imports torch."""
