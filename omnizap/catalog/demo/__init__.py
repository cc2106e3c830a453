"""Demo data: a realistic catalog generated from a seed (`omnizap demo seed`, docs/demo.md).

- `themes`: names, descriptions, captions, palettes and publishers (pt-BR and English).
- `images`: sticker designs drawn with Pillow (stills as PNG/JPEG, animations as GIF).
- `plan`: what the catalog contains, decided from the seed before anything is written.
- `seeder`: writes it through the core services (StickerService.ingest, PackService.create_packs),
  plus the engagement history as a bulk load.
"""
