"""The words, colours and people of the demo catalog: themes, palettes, publishers.

Pack names, descriptions and publishers mix pt-BR and English (with accents and emojis), the way
an OmniZap community's catalog looks. Captions drawn into images are plain ASCII because Pillow's
bundled font (`ImageFont.load_default`) has no glyphs for accented letters.
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("pt", "en")


@dataclass(frozen=True)
class Colour:
    rgb: tuple[int, int, int]
    name_en: str
    name_pt: str

    def name(self, language: str) -> str:
        return self.name_pt if language == "pt" else self.name_en


@dataclass(frozen=True)
class Palette:
    name: str
    colours: tuple[Colour, ...]


def _c(hex_rgb: str, name_en: str, name_pt: str) -> Colour:
    value = int(hex_rgb.lstrip("#"), 16)
    return Colour(((value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF), name_en, name_pt)


PALETTES: tuple[Palette, ...] = (
    Palette(
        "sunset",
        (
            _c("#ff6b35", "orange", "laranja"),
            _c("#f7c548", "yellow", "amarelo"),
            _c("#e63946", "red", "vermelho"),
            _c("#6a0572", "purple", "roxo"),
        ),
    ),
    Palette(
        "ocean",
        (
            _c("#0077b6", "blue", "azul"),
            _c("#00b4d8", "turquoise", "turquesa"),
            _c("#90e0ef", "light blue", "azul-claro"),
            _c("#023e8a", "navy blue", "azul-marinho"),
        ),
    ),
    Palette(
        "forest",
        (
            _c("#2d6a4f", "dark green", "verde-escuro"),
            _c("#52b788", "green", "verde"),
            _c("#b7e4c7", "mint", "verde-menta"),
            _c("#8b5e34", "brown", "marrom"),
        ),
    ),
    Palette(
        "candy",
        (
            _c("#ff70a6", "pink", "rosa"),
            _c("#ff9770", "peach", "pêssego"),
            _c("#ffd670", "lemon yellow", "amarelo-limão"),
            _c("#70d6ff", "sky blue", "azul-céu"),
        ),
    ),
    Palette(
        "neon",
        (
            _c("#39ff14", "neon green", "verde-neon"),
            _c("#ff00ff", "magenta", "magenta"),
            _c("#00ffff", "cyan", "ciano"),
            _c("#faff00", "neon yellow", "amarelo-neon"),
        ),
    ),
    Palette(
        "retro",
        (
            _c("#d62828", "brick red", "vermelho-tijolo"),
            _c("#f77f00", "amber", "âmbar"),
            _c("#fcbf49", "mustard", "mostarda"),
            _c("#003049", "petrol blue", "azul-petróleo"),
        ),
    ),
    Palette(
        "pastel",
        (
            _c("#cdb4db", "lilac", "lilás"),
            _c("#ffc8dd", "baby pink", "rosa-bebê"),
            _c("#bde0fe", "pale blue", "azul-bebê"),
            _c("#a2d2ff", "periwinkle", "azul-lavanda"),
        ),
    ),
    Palette(
        "brasil",
        (
            _c("#009c3b", "flag green", "verde-bandeira"),
            _c("#ffdf00", "gold", "dourado"),
            _c("#002776", "royal blue", "azul-royal"),
            _c("#ffffff", "white", "branco"),
        ),
    ),
    Palette(
        "mono",
        (
            _c("#222222", "black", "preto"),
            _c("#777777", "grey", "cinza"),
            _c("#dddddd", "light grey", "cinza-claro"),
            _c("#ff3b30", "signal red", "vermelho-vivo"),
        ),
    ),
    Palette(
        "coffee",
        (
            _c("#6f4e37", "coffee brown", "café"),
            _c("#c8a27c", "caramel", "caramelo"),
            _c("#f3e5ab", "cream", "creme"),
            _c("#3b2417", "dark chocolate", "chocolate"),
        ),
    ),
)


@dataclass(frozen=True)
class Theme:
    """One kind of pack: what it is called, says and looks like."""

    key: str
    tags: tuple[str, ...]  # lowercase slugs, the first ones are the most specific
    emojis: tuple[str, ...]
    captions: tuple[str, ...]  # ASCII only (drawn with the bundled font)
    names_pt: tuple[str, ...]
    names_en: tuple[str, ...]
    descriptions_pt: tuple[str, ...]
    descriptions_en: tuple[str, ...]
    palettes: tuple[str, ...]
    weight: int = 1  # how often packs of this theme are made; memes and greetings lead

    def names(self, language: str) -> tuple[str, ...]:
        return self.names_pt if language == "pt" else self.names_en

    def descriptions(self, language: str) -> tuple[str, ...]:
        return self.descriptions_pt if language == "pt" else self.descriptions_en


THEMES: tuple[Theme, ...] = (
    Theme(
        "memes",
        ("memes", "reacoes", "reactions", "humor", "engracado"),
        ("😂", "🤣", "😅", "🙃", "😐", "💀"),
        ("kkkk", "oxe", "nem vem", "lol", "bruh", "mood", "ata", "socorro", "ne?"),
        (
            "Reações do Grupo",
            "Memes Clássicos",
            "Só Vergonha Alheia",
            "Kkkkk Infinito",
            "Respostas Prontas 😂",
        ),
        ("Reaction Memes", "Group Chat Classics", "Certified Mood", "No Context Needed"),
        (
            "As reações que salvam qualquer conversa do grupo.",
            "Figurinhas para responder sem digitar nada. Use com moderação (ou não).",
        ),
        (
            "The reactions that rescue any group chat.",
            "Reply without typing a single word.",
        ),
        ("neon", "mono", "candy"),
        weight=4,
    ),
    Theme(
        "bom-dia",
        ("bom-dia", "good-morning", "frases", "cafe"),
        ("☀️", "☕", "🌻", "🌞", "🙏"),
        ("bom dia!", "cafe primeiro", "good morning", "rise & shine", "bom diaaa", "boa semana"),
        ("Bom Dia, Grupo! ☀️", "Bom Dia com Café", "Mensagens de Bom Dia", "Bom Dia Família 🌻"),
        ("Good Morning Vibes", "Coffee First ☕", "Rise and Shine"),
        (
            "Para quem manda bom dia todo santo dia no grupo da família.",
            "Flores, café e muito sol para começar o dia.",
        ),
        ("Sunshine, coffee and flowers for every morning.",),
        ("sunset", "coffee", "candy"),
        weight=3,
    ),
    Theme(
        "gatos",
        ("gatos", "cats", "pets", "fofos"),
        ("🐱", "😺", "😻", "🐾", "😹"),
        ("miau", "zzz", "sou fofo", "meow", "feed me", "purr", "que preguica"),
        ("Gatinhos Fofos 🐱", "Miau do Dia", "Gatos Dramáticos", "Vida de Gato"),
        ("Cat Reactions", "Purrfect Moods", "Grumpy Cats"),
        (
            "Gatinhos para responder qualquer conversa com muito charme.",
            "Gatos julgando você, dormindo e pedindo sachê.",
        ),
        ("Cats judging you, napping and asking for snacks.",),
        ("pastel", "coffee", "sunset"),
        weight=3,
    ),
    Theme(
        "cachorros",
        ("cachorros", "dogs", "pets", "au-au"),
        ("🐶", "🐕", "🦴", "🐾"),
        ("au au", "bora passear", "good boy", "woof", "cade a bola?"),
        ("Doguinhos Felizes 🐶", "Au Au Stickers", "Caramelo Oficial"),
        ("Good Boys Only", "Doggo Moods", "Woof Pack"),
        ("O vira-lata caramelo e seus amigos em todas as situações.",),
        ("Happy dogs for every occasion.",),
        ("coffee", "forest", "candy"),
        weight=2,
    ),
    Theme(
        "futebol",
        ("futebol", "football", "esportes", "torcida"),
        ("⚽", "🏆", "🥅", "🔥", "📣"),
        ("goool", "e campeao", "vai time!", "goal!", "juiz ladrao", "bora!"),
        ("Futebol de Domingo ⚽", "Torcida Organizada", "Resenha do Jogo", "É Campeão! 🏆"),
        ("Matchday", "Football Banter", "Goal Celebrations"),
        (
            "Para zoar os amigos depois do clássico.",
            "Gol, VAR, pênalti e a resenha de domingo.",
        ),
        ("Banter for after the big match.",),
        ("brasil", "forest", "retro"),
        weight=2,
    ),
    Theme(
        "amor",
        ("amor", "love", "romance", "fofura"),
        ("❤️", "😍", "💕", "🥰", "💘"),
        ("te amo", "saudade", "love you", "xoxo", "meu bem", "miss you"),
        ("Amor em Figurinhas 💕", "Saudade de Você", "Casal Fofo", "Para o Crush"),
        ("Love Notes", "Hearts & Hugs", "For My Person"),
        ("Corações, abraços e declarações para mandar para quem você ama.",),
        ("Hearts, hugs and declarations for your favourite person.",),
        ("candy", "pastel", "sunset"),
        weight=2,
    ),
    Theme(
        "games",
        ("games", "gamer", "jogos", "pixel"),
        ("🎮", "🕹️", "👾", "🏆"),
        ("gg", "bora jogar", "lag!", "level up", "1up", "noob", "gg ez"),
        ("Modo Gamer 🎮", "Só Mais Uma Partida", "Pixel Art Vibes"),
        ("GG Pack", "Level Up", "Retro Arcade 👾", "Press Start"),
        ("Para a call do squad: GG, lag e só mais uma partida.",),
        ("For the squad: GG, lag and one more match.",),
        ("neon", "retro", "ocean"),
        weight=2,
    ),
    Theme(
        "comida",
        ("comida", "food", "lanche", "doces"),
        ("🍕", "🍔", "🍩", "🍫", "🥐", "🧀"),
        ("fome", "pizza?", "brigadeiro", "yummy", "snack time", "pao de queijo"),
        ("Bateu a Fome 🍕", "Brigadeiro & Cia", "Comidinhas", "Pão de Queijo Lovers 🧀"),
        ("Snack Attack", "Foodie Faces", "Pizza Party 🍕"),
        ("Comidinhas, docinhos e aquele pão de queijo quentinho.",),
        ("Snacks, sweets and pizza for hungry chats.",),
        ("sunset", "coffee", "candy"),
        weight=2,
    ),
    Theme(
        "festa",
        ("festa", "party", "aniversario", "birthday"),
        ("🎉", "🥳", "🎂", "🎈", "🎁"),
        ("parabens!", "bora!", "happy bday", "party!", "feliz aniversario"),
        ("Parabéns pra Você 🎂", "Bora Festejar 🥳", "Aniversário no Grupo"),
        ("Party Time", "Happy Birthday! 🎈", "Let's Celebrate"),
        ("Balões, bolo e parabéns para todos os aniversários do mês.",),
        ("Balloons, cake and cheers for every birthday.",),
        ("candy", "neon", "pastel"),
        weight=2,
    ),
    Theme(
        "trabalho",
        ("trabalho", "work", "escritorio", "segunda-feira"),
        ("💼", "😩", "☕", "📅", "📊"),
        ("sextou", "reuniao de novo", "deadline", "ok chefe", "on it", "home office"),
        ("Segunda-feira de Novo", "Sextou! 🎉", "Vida de Escritório", "Reunião que Podia Ser um E-mail"),
        ("Office Life", "Monday Again", "Per My Last Email"),
        ("Para sobreviver às reuniões e comemorar a sexta-feira.",),
        ("Survive the meetings, celebrate Friday.",),
        ("mono", "ocean", "coffee"),
        weight=2,
    ),
    Theme(
        "festa-junina",
        ("festa-junina", "sao-joao", "quadrilha", "brasil"),
        ("🌽", "🔥", "🎆", "🤠", "🎶"),
        ("arraia", "olha a cobra!", "e mentira!", "quentao", "anarrie"),
        ("Arraiá do Grupo 🌽", "São João Chegou", "Quadrilha Animada"),
        ("June Festival", "Arraiá Party"),
        ("Pamonha, quentão, fogueira e quadrilha: o arraiá é aqui!",),
        ("Corn, bonfires and square dancing: Brazil's June festival.",),
        ("retro", "sunset", "brasil"),
    ),
    Theme(
        "carnaval",
        ("carnaval", "bloco", "folia", "brasil"),
        ("🎭", "🎉", "💃", "🥁", "🎊"),
        ("bora pro bloco", "folia", "ziriguidum", "alala-o", "samba!"),
        ("Carnaval 2025 🎭", "Bloco na Rua", "Folia Total 💃"),
        ("Carnival Mood", "Samba Squad"),
        ("Confete, serpentina e bloquinho desde sexta.",),
        ("Confetti, samba and street parties.",),
        ("neon", "candy", "brasil"),
    ),
    Theme(
        "natal",
        ("natal", "christmas", "feriado", "fim-de-ano"),
        ("🎄", "🎅", "⭐", "🎁", "❄️"),
        ("feliz natal", "ho ho ho", "merry xmas", "boas festas", "feliz ano novo"),
        ("Natal em Família 🎄", "Boas Festas", "Amigo Secreto"),
        ("Merry Christmas", "Holiday Cheer ❄️", "Season's Greetings"),
        ("Árvore, panetone e amigo secreto para as festas de fim de ano.",),
        ("Trees, gifts and greetings for the holidays.",),
        ("forest", "retro", "mono"),
    ),
    Theme(
        "espaco",
        ("espaco", "space", "astronomia", "ciencia"),
        ("🚀", "🌙", "⭐", "🪐", "👽"),
        ("to the moon", "houston", "orbita", "eta!", "zero g"),
        ("Rumo às Estrelas 🚀", "Astronautas", "Céu de Estrelas"),
        ("Space Cadets", "To The Moon 🌙", "Cosmic Vibes"),
        ("Foguetes, planetas e alienígenas simpáticos.",),
        ("Rockets, planets and friendly aliens.",),
        ("ocean", "neon", "mono"),
    ),
    Theme(
        "plantas",
        ("plantas", "plants", "natureza", "verde"),
        ("🌿", "🌵", "🌸", "🌱", "🪴"),
        ("regue-me", "plant mom", "fotossintese", "grow!", "bom sol"),
        ("Mãe de Planta 🌱", "Jardim de Casa", "Suculentas & Cia"),
        ("Plant Parents", "Green Thumb 🌿", "Cactus Club"),
        ("Para quem conversa com as plantas (e elas respondem).",),
        ("For people who talk to their plants.",),
        ("forest", "pastel", "coffee"),
    ),
    Theme(
        "programacao",
        ("programacao", "dev", "tecnologia", "codigo"),
        ("💻", "🐛", "🤖", "⌨️", "☕"),
        ("404", "bug?", "deploy na sexta", "it works!", "git push", "na minha maquina roda"),
        ("Vida de Dev 💻", "Deploy na Sexta", "Funciona na Minha Máquina"),
        ("Dev Life", "It Works On My Machine", "Merge Conflict 🐛"),
        ("Bugs, deploys e cafés para o canal do time.",),
        ("Bugs, deploys and coffee for the team channel.",),
        ("mono", "neon", "ocean"),
    ),
    Theme(
        "musica",
        ("musica", "music", "sertanejo", "rock"),
        ("🎵", "🎸", "🎤", "🎧", "🥁"),
        ("solta o som", "aumenta!", "rock on", "play", "bis!", "modao"),
        ("Solta o Som 🎵", "Modão de Viola", "Rock Nacional 🎸"),
        ("Rock On", "Playlist Moods 🎧", "Karaoke Night"),
        ("Do sertanejo ao rock: figurinhas para a playlist do grupo.",),
        ("From rock to pop: stickers for the group playlist.",),
        ("retro", "neon", "sunset"),
    ),
    Theme(
        "estudos",
        ("escola", "estudos", "vestibular", "provas"),
        ("📚", "✏️", "🎓", "😵", "📝"),
        ("prova amanha", "estudando", "enem vem ai", "study mode", "passei!", "help"),
        ("Semana de Provas 📚", "Rumo ao ENEM", "Vida de Estudante"),
        ("Study Mode", "Exam Week 📝", "Graduation Day 🎓"),
        ("Para o grupo da turma em semana de provas.",),
        ("For the class group chat during exam week.",),
        ("pastel", "ocean", "mono"),
    ),
)

THEME_BY_KEY = {theme.key: theme for theme in THEMES}
PALETTE_BY_NAME = {palette.name: palette for palette in PALETTES}

# Tags added to some packs on top of their theme's.
ANIMATED_TAGS = {"pt": "animados", "en": "animated"}
EXTRA_TAGS = ("brasil", "engracado", "fofos", "whatsapp", "classicos", "novidades")

FIRST_NAMES = (
    "Ana", "João", "Maria", "Pedro", "Beatriz", "Lucas", "Júlia", "Rafael", "Camila", "Thiago",
    "Larissa", "Gustavo", "Fernanda", "Mateus", "Letícia", "Bruno", "Aline", "Diego", "Priscila",
    "Vinícius", "Sofia", "Heitor", "Valentina", "Otávio", "Emily", "Noah", "Chloe", "Liam",
)  # fmt: skip
LAST_NAMES = (
    "Souza", "Silva", "Oliveira", "Santos", "Pereira", "Lima", "Carvalho", "Gomes", "Ribeiro",
    "Almeida", "Araújo", "Barbosa", "Conceição", "Brandão", "Smith", "Nakamura", "Fonseca",
)  # fmt: skip
STUDIOS = (
    "Estúdio Pipoca", "Figurinhas da Bia 💖", "ZapArt", "Sticker Lab", "@memelandia",
    "Coisas de Gato", "Pixel & Pão de Queijo", "Bah, Tchê Stickers", "Ateliê Açaí 💜",
    "The Meme Factory", "Doodle Club", "Happy Pixels", "Ilustra Nordeste", "Cafézinho Design ☕",
    "Rabiscos do Léo", "Studio Caju", "Arte na Rede", "Sticker Guild", "Bolacha ou Biscoito?",
    "Tropical Ink 🌴",
)  # fmt: skip
