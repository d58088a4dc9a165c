"""Image data: `datasets.load_split(DataConfig, split)` for every source (built-in sets in
`sources`, image folders in `folder`, tar shards in `shards`), decoding rules in `decode`,
training batches in `stream.BatchStream`, and the stage-2 latent cache in `latent_cache`."""
