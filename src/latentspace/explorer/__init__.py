"""latentspace.explorer"""
