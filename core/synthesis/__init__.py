"""`I_t+1 = G(S_t+1, I_t, S_t, z)`: the generators, the synthesis baselines, compositing and realism metrics."""
