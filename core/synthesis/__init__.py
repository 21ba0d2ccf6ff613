"""Change synthesis I_t+1 = G(S_t+1, I_t, S_t, z): the generators and their compositing."""
