"""latentspace.viz"""
