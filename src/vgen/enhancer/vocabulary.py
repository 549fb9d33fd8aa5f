"""Curated word lists behind the fidelity score (singular lemmas, lower case).

``SUBJECT_NOUNS``: people, animals, vehicles and objects -- a rewrite that names one of them when the
user did not has invented a subject. ``SCENERY_WORDS``: setting, weather, light, colour, camera,
lens, style and mood vocabulary the enhancer is there to add; new words from it are never a
fidelity failure. The two sets are disjoint (a word such as "tree" or "building" is scenery).
Everything else a rewrite adds is reported as "unlisted" so the lists can grow from what shows up.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
 return frozenset(text.split())


STOPWORDS = _words("""
a an the and or but nor so yet of in on at to from by with without into onto over under above below
across through throughout along around about against among between behind beside besides beyond
near nearby toward towards upon within while during before after until till as than then there here
this that these those it its it's itself they them their theirs he him his she her hers we us our you
your i me my mine who whom whose which what when where why how all any both each every few more most
other some such no not only own same too very just also again once is are was were be been being am
do does did doing have has had having can could will would shall should may might must one's
s t don doesn isn aren wasn weren won't can't up down out off away back still even ever
""")

# Every new word from these counts as invented. Grouped for the next editor; one set at run time.
_PEOPLE = """
person man woman boy girl child kid baby toddler teenager teen adult elder grandmother grandfather
grandma grandpa mother father mom dad parent son daughter brother sister family couple friend lover
bride groom husband wife gentleman lady guy figure silhouette stranger crowd audience spectator tourist
traveler traveller hiker climber runner jogger dancer singer musician guitarist drummer pianist violinist
actor actress artist painter sculptor photographer filmmaker director model player athlete skier
surfer swimmer diver skater cyclist rider driver pilot captain sailor fisherman farmer gardener chef
cook baker waiter waitress bartender barista shopkeeper vendor merchant customer worker builder
mechanic engineer scientist doctor nurse surgeon patient teacher student pupil professor scholar
monk nun priest king queen prince princess knight soldier warrior guard police policeman officer
detective spy thief robber pirate cowboy ninja samurai wizard witch ghost zombie vampire alien robot
astronaut explorer hunter shepherd villager citizen pedestrian passenger commuter neighbor neighbour
boss employee colleague reporter journalist anchor host guest visitor judge lawyer politician
president emperor god goddess angel demon monster giant dwarf elf fairy mermaid hero heroine villain
character protagonist narrator someone somebody anyone everyone nobody individual human humanity
""".split()
_ANIMALS = """
animal creature pet dog puppy cat kitten fox wolf bear cub lion tiger leopard cheetah panther jaguar
elephant giraffe zebra horse pony foal donkey mule camel llama cow bull calf ox buffalo bison deer
reindeer moose elk antelope goat sheep lamb pig boar rabbit bunny hare squirrel mouse rat hamster
raccoon otter beaver badger hedgehog skunk bat monkey ape gorilla chimpanzee orangutan kangaroo koala
panda sloth hippo rhino crocodile alligator snake lizard turtle tortoise frog toad bird eagle hawk
falcon owl crow raven parrot pigeon dove sparrow robin seagull gull swan duck goose chicken hen rooster
turkey peacock flamingo penguin pelican heron stork hummingbird fish shark whale dolphin seal walrus
octopus squid jellyfish crab lobster shrimp starfish butterfly moth bee wasp ant spider beetle
ladybug dragonfly mosquito insect worm snail dragon unicorn dinosaur phoenix herd flock swarm
 
""".split()
_VEHICLES = """
car automobile truck lorry van bus taxi cab jeep suv motorcycle motorbike scooter bicycle bike
tricycle train tram subway locomotive wagon carriage cart tractor bulldozer ambulance
firetruck limousine boat ship sailboat yacht canoe kayak raft ferry submarine gondola airplane
plane aircraft jet helicopter rocket spaceship spacecraft satellite ufo balloon airship
glider parachute skateboard surfboard snowboard sled sleigh vehicle
""".split()
_OBJECTS = """
book newspaper magazine letter envelope paper map phone smartphone laptop computer television
tv radio microphone headphone speaker guitar piano violin drum trumpet flute cup mug glass
bottle jar bowl plate spoon fork knife pot kettle teapot coffee tea wine beer lemonade juice
cake bread pizza burger sandwich apple banana fruit food meal candle torch
umbrella hat cap helmet mask sunglasses scarf coat jacket dress shirt shoe boot bag backpack
suitcase box basket chair table desk bed sofa couch bench clock mirror necklace
crown sword shield gun rifle arrow ball toy doll kite flag sign banner poster painting
 statue sculpture trophy coin money wallet ticket gift rose
bouquet balloon cigarette pipe pen pencil brush canvas ladder rope chain bucket barrel
tool hammer axe shovel wheel engine machine device gadget weapon instrument
""".split()
SUBJECT_NOUNS = frozenset(_PEOPLE + _ANIMALS + _VEHICLES + _OBJECTS)

# Words that stand for "the same subject" in other words: a rewrite may call the user's woman a
# figure or the user's fox an animal. Each maps to the subject groups it can refer to.
GENERIC_SUBJECTS = {
    "person": frozenset(_PEOPLE), "figure": frozenset(_PEOPLE),
    "silhouette": frozenset(_PEOPLE + _ANIMALS), "individual": frozenset(_PEOPLE),
    "human": frozenset(_PEOPLE), "character": frozenset(_PEOPLE + _ANIMALS),
    "animal": frozenset(_ANIMALS), "creature": frozenset(_ANIMALS), "pet": frozenset(_ANIMALS),
    "vehicle": frozenset(_VEHICLES), "object": frozenset(_OBJECTS), "device": frozenset(_OBJECTS),
}

SCENERY_WORDS = _words("""
scene setting background foreground landscape scenery view vista horizon sky skyline cloud fog mist
haze smoke steam dust rain raindrop drizzle storm thunder lightning snow snowflake frost ice wind
breeze weather sun sunlight moon moonlight star starlight dawn sunrise morning noon afternoon
evening sunset dusk twilight night midnight day daylight season spring summer autumn fall winter
sea ocean wave surf tide water river stream creek lake pond waterfall shore coast coastline beach sand
dune cliff rock stone pebble boulder mountain hill valley canyon desert forest wood woodland jungle
tree branch leaf grass meadow field garden park flower petal bush moss vine reed island cave glacier
street road alley avenue lane path trail sidewalk pavement crosswalk bridge tunnel city town village
downtown skyline building skyscraper tower house home cabin cottage castle palace temple church
ruin wall window door roof rooftop balcony stair staircase room interior hall corridor kitchen cafe
café restaurant bar shop store market square plaza station platform harbor harbour port pier dock
factory warehouse office studio stage arena stadium highway traffic puddle reflection surface floor
ground earth soil mud grass light lighting shadow shade glow shine gleam glare sparkle
highlight flare flash beam ray spotlight backlight rimlight neon lamp streetlight lantern candlelight
firelight fire flame ember spark haze contrast exposure tone hue color colour palette saturation
red orange yellow green blue purple violet pink white black gray grey brown gold golden silver amber
teal cyan magenta crimson scarlet turquoise pastel warm cool cold vivid vibrant muted soft hard
harsh gentle bright dark dim deep pale rich dramatic moody cinematic atmospheric ethereal serene
calm quiet peaceful tranquil melancholic nostalgic mysterious eerie tense joyful dreamy epic mood
atmosphere feeling camera shot angle frame framing composition closeup close-up close wide
medium long extreme aerial overhead bird's-eye birdseye drone low high eye-level pov point-of-view
tracking dolly push-in pull-out pan panning tilt zoom crane handheld steadicam gimbal orbit
orbiting slow-motion slow motion timelapse time-lapse movement lens focus depth bokeh blur
shallow sharp focal mm anamorphic wide-angle telephoto macro fisheye film grain texture detail
style cinematography photography documentary animation render realistic photorealistic
hyperrealistic stylized painterly watercolor oil anime cartoon noir vintage retro modern
futuristic minimalist surreal fantasy 4k 8k hdr resolution quality motion speed pace rhythm
""")

# A prompt with one of these already sets the camera: expand mode then adds no camera slot.
CAMERA_WORDS = _words("""
camera shot angle closeup close-up aerial overhead bird's-eye birdseye drone pov point-of-view tracking
dolly push-in pull-out pan panning tilt zoom crane handheld steadicam gimbal orbit orbiting timelapse
time-lapse slow-motion lens mm macro wide-angle telephoto fisheye bokeh first-person
""")
