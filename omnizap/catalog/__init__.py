"""The public catalog: what anyone may see of packs (lists, search, details, stats, rankings),
how people interact with packs (open, like, dislike), and the demo data that fills a new install.

The web layer (`omnizap.web`) calls these services; they call repositories and storage below.
"""
