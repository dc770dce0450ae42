"""Data protection (RGPD): the right of access (``access``: everything held about a party, exported
as a printable page or JSON by ``views``) and erasure and retention (``retention``)."""
