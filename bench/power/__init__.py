"""How often the verdicts find a known slowdown, and how often they cry wolf: one module a mode.

compare: `power` (saved-run histories judged by `compare`); ab: `power --ab` (A/B sessions);
changes: `power --changes` (change points on saved series); scores: `power --scores` (the
scores and tests on saved A/B pairs, and power computed from their standard errors).
detection: what the modes share. May import every layer below the commands.
"""
