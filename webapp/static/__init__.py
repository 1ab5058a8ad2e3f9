"""The browser side of the live latent space: ``vaehub.js`` (the decoder, the live map and grid), the standalone
page ``live.html``, and :mod:`webapp.static.live`, which lists and serves the files they fetch."""
