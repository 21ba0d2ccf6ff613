"""The learning-free half of the change model, `S_t+1 = F(S_t)`: label states, removal and creation placement,
class transitions and event series (Changen §3.1, Changen2's change-event simulation)."""
