"""latentspace.latent"""
