"""Device simulators with warehouse physics, for demos, tests and rehearsals."""
