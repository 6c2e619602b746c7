"""latentspace.metrics"""
