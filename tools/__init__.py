"""Developer tools: the letter-template builder and the stand-in billing service."""
