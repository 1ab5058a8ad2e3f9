"""The browser side of the live latent space: ``vaehub.js`` (the decoder, the live map and grid) and
:mod:`webapp.static.live`, which lists the files it fetches and their URLs."""
