"""`python -m latentspace ...`: the `latentspace` command itself (the console script's own entry point), which is
also how torchrun starts it: `torchrun --nproc_per_node=N -m latentspace -- train ...`."""
from latentspace.cli.entry import main

if __name__ == "__main__":
    main()
