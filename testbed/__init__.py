"""The test bed: a real control plane, a DigitalOcean API imitation, a metadata imitation."""
