"""The theme taxonomy: what auto theme packs are about, and the words that describe each subtheme.

A classification row's `theme_key` is `<theme>/<subtheme>` (lowercase slugs, e.g. `animals/cats`);
auto packs are named from the titles here: `[AUTO] Animals • Cats • Vol. 2`. Descriptions are
written for text-embedding similarity: classifier labels are mapped to the nearest description.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Subtheme:
    key: str  # "<theme>/<subtheme>"
    theme_title: str
    title: str
    description: str


def _theme(slug: str, title: str, subthemes: dict[str, tuple[str, str]]) -> list[Subtheme]:
    return [
        Subtheme(f"{slug}/{sub}", title, sub_title, description)
        for sub, (sub_title, description) in subthemes.items()
    ]


SUBTHEMES: tuple[Subtheme, ...] = tuple(
    [
        *_theme(
            "animals",
            "Animals",
            {
                "cats": ("Cats", "house cats, kittens and tabby cats kept as pets"),
                "dogs": ("Dogs", "dogs, puppies and other dog breeds"),
                "birds": ("Birds", "birds, parrots, owls, eagles and poultry"),
                "wildlife": (
                    "Wildlife",
                    "wild mammals such as bears, monkeys, elephants, lions, tigers and foxes",
                ),
                "sea-life": ("Sea Life", "fish, sharks, whales, turtles, crabs and other sea creatures"),
                "bugs-reptiles": ("Bugs & Reptiles", "insects, spiders, snakes, lizards and frogs"),
            },
        ),
        *_theme(
            "food",
            "Food",
            {
                "meals": ("Meals", "pizza, burgers, hot dogs, pasta and other dishes"),
                "sweets": ("Sweets", "cakes, ice cream, chocolate, cookies and desserts"),
                "fruit-veg": ("Fruit & Veg", "fruit and vegetables such as bananas, lemons and broccoli"),
                "drinks": (
                    "Drinks",
                    "coffee, espresso, tea, milkshakes, eggnog, beer, wine, cups and glasses of drinks",
                ),
            },
        ),
        *_theme(
            "nature",
            "Nature",
            {
                "flowers-plants": ("Flowers & Plants", "flowers, daisies, roses, mushrooms and plants"),
                "landscapes": ("Landscapes", "mountains, beaches, volcanoes, lakes, valleys and coasts"),
                "sky-weather": ("Sky & Weather", "sun, clouds, rain, snow, storms, stars and the moon"),
            },
        ),
        *_theme(
            "vehicles",
            "Vehicles",
            {
                "cars": ("Cars", "cars, sports cars, taxis, trucks and buses"),
                "two-wheels": ("Two Wheels", "motorbikes, mopeds, scooters and bicycles"),
                "air-sea": ("Air & Sea", "aircraft, airplanes, helicopters, ships, boats and rockets"),
            },
        ),
        *_theme(
            "sports",
            "Sports",
            {
                "ball-games": ("Ball Games", "soccer, football, basketball, tennis and other ball sports"),
                "fitness": ("Fitness", "gym, weights, running, cycling, swimming and skating"),
            },
        ),
        *_theme(
            "things",
            "Things",
            {
                "tech": ("Tech", "computers, phones, keyboards, screens, cameras and gadgets"),
                "music": ("Music", "guitars, pianos, drums and other musical instruments"),
                "home": ("Home", "furniture, kitchen appliances, lamps and household objects"),
                "fashion": ("Fashion", "clothes, shoes, hats, glasses, bags and jewellery"),
                "toys-games": ("Toys & Games", "toys, teddy bears, balloons, puzzles and video games"),
                "tools": ("Tools", "hammers, screwdrivers, wrenches and other tools"),
            },
        ),
        *_theme(
            "expressions",
            "Expressions",
            {
                "text": ("Text & Memes", "stickers made mostly of written words, captions and memes"),
                "art": ("Art & Cartoons", "drawings, cartoons, comics, emoji and illustrations"),
                "hearts-love": ("Hearts & Love", "hearts, kisses, love and romance"),
            },
        ),
        *_theme(
            "places",
            "Places",
            {
                "buildings": ("Buildings", "houses, castles, churches, towers, bridges and city streets"),
            },
        ),
    ]
)

SUBTHEME_BY_KEY: dict[str, Subtheme] = {subtheme.key: subtheme for subtheme in SUBTHEMES}


def theme_titles(theme_key: str) -> tuple[str, str]:
    """(theme title, subtheme title) of a theme key; unknown keys are title-cased from their slugs."""
    known = SUBTHEME_BY_KEY.get(theme_key)
    if known is not None:
        return known.theme_title, known.title
    theme, _, sub = theme_key.partition("/")

    def title(slug: str) -> str:
        return " ".join(word.capitalize() for word in slug.replace("_", "-").split("-") if word)

    return title(theme) or "Misc", title(sub) or "General"
