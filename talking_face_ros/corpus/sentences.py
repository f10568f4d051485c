"""The spoken text of the synthetic corpus: about fifteen hundred sentences of the project's own.

Why a grammar and not a published list: public prompt corpora (Harvard, TIMIT, ...) are not ours
to ship, and a social robot should hear and say the things it meets at work (greetings, errands,
directions, weather, cooking, shopping, small facts). Each family below is a template whose slot
lists were chosen so that any filling is sensible English; a family contributes a fixed number
of fillings at positions drawn by hashing among its slot combinations, so the corpus is varied,
needs no random generator and is identical on every machine and Python hash seed.
Numbers are written as words because the speech synthesiser and the aligner both read words.

Sentences are split into train / val / test by a hash of their normalised text (not their
position), so editing one family never moves other sentences between splits and no test
sentence can appear in training.
"""
from __future__ import annotations

import hashlib
import math
import re
import string

SPLITS: tuple[str, ...] = ("train", "val", "test")
_TEST_BUCKETS = frozenset({0})  # of 10 hash buckets: 10 % test
_VAL_BUCKETS = frozenset({1})  # 10 % val, the other 80 % train

# --- shared vocabulary ---------------------------------------------------------------------------

_NAMES = (
    "Maria", "Paul", "Bob", "Emma", "Priya", "Bruno", "Mei", "Oliver", "Sofia", "Victor",
    "Fatima", "Omar", "Beatrice", "Hamid", "Pablo", "Amelia", "Mohammed", "Yuki", "Phoebe",
    "Marcus", "Ngozi", "Felipe", "Brigitte", "Tom",
)
_TOWN_PLACES = (
    "post office", "pharmacy", "bakery", "museum", "library", "bus stop", "bank",
    "swimming pool", "train station", "flower shop", "police station", "fish market",
    "playground", "cinema", "town hall",
)
_CITIES = (
    "Brighton", "Boston", "Munich", "Porto", "Lisbon", "Vienna", "Bristol", "Barcelona",
    "Memphis", "Oxford", "Bordeaux", "Melbourne",
)


def _pairs(items, joiner: str) -> tuple[str, ...]:
    """Every ordered pair of two different items, for slots like 'A or B'."""
    return tuple(f"{a}{joiner}{b}" for a in items for b in items if a != b)


def _weather_plans() -> tuple[str, ...]:
    """'rains tomorrow, we will stay inside': the plan agrees with the weather (no picnic in
    a downpour), so weather and plan fill one slot together."""
    groups = (
        (("rains", "snows", "is too windy", "pours down", "is freezing"),
         ("we will stay inside and bake cookies", "we can visit the science museum instead",
          "let's watch a film at home", "we should cancel the boat trip",
          "I will drive you to school", "we can play board games by the fire")),
        (("is sunny", "stays dry", "is warm", "is bright and mild"),
         ("we can have a picnic in the park", "let's go to the beach",
          "we will walk to the market", "we could eat outside in the garden",
          "I will wash the car", "we can fly the new kite")),
    )
    return tuple(f"{weather} {when}, {plan}"
                 for weathers, plans in groups
                 for weather in weathers
                 for when in ("tomorrow", "on Saturday", "this afternoon", "after lunch")
                 for plan in plans)


_IF_WEATHER_PLANS = _weather_plans()


# --- the families: (template, slot options, how many fillings to take) -------------------------

_FAMILIES: tuple[tuple[str, dict[str, tuple[str, ...]], int], ...] = (
    # Greetings and small talk.
    ("{greeting}, {name}, {question}?", {
        "greeting": ("Good morning", "Good afternoon", "Good evening", "Hello", "Hi there",
                     "Welcome back", "Nice to see you"),
        "name": _NAMES,
        "question": ("how was your weekend", "how are you feeling today", "did you sleep well",
                     "would you like a cup of tea", "are you ready for your appointment",
                     "how was the trip from Boston", "did you find the place easily",
                     "may I take your coat", "shall we begin", "have you been waiting long",
                     "how is your mother doing", "what brings you here today",
                     "did you bring the photos", "are you hungry"),
    }, 32),
    ("It was {adj} to {verb} you{tail}{end}", {
        "adj": ("nice", "lovely", "wonderful", "a pleasure", "really good", "so good"),
        "verb": ("meet", "see", "talk with", "catch up with", "work with", "finally meet"),
        "tail": ("", " today", " again", " this morning", " after all this time",
                 " at the party", " in person"),
        "end": (".", "!"),
    }, 22),
    ("{thanks} for {reason}{end}", {
        "thanks": ("Thank you", "Thanks a lot", "Thank you so much", "Many thanks"),
        "reason": ("the lovely flowers", "helping me move the boxes", "your patience this morning",
                   "the birthday present", "waiting for me", "bringing my umbrella back",
                   "the warm welcome", "fixing my bicycle", "the delicious blueberry muffins",
                   "calling me back so quickly", "your kind message",
                   "lending me your phone charger", "picking me up from the airport",
                   "the book about volcanoes", "feeding the fish while I was away",
                   "a wonderful evening"),
        "end": (".", "!"),
    }, 24),
    ("I feel {state} {time}{end}", {
        "state": ("much better", "a bit tired", "very sleepy", "full of energy", "quite nervous",
                  "really happy", "rather bored", "so relieved", "a little dizzy", "wonderful",
                  "hungry", "calm and rested"),
        "time": ("today", "this morning", "right now", "this evening", "after that nap",
                 "after the long walk"),
        "end": (".", "!"),
    }, 22),
    ("{lead}what is your favourite {thing}?", {
        "lead": ("", "Tell me, ", "So, ", "Maria, ", "Bruno, ", "Phoebe, ", "Mohammed, "),
        "thing": ("colour", "kind of music", "film of all time", "season of the year",
                  "board game", "fruit", "animal at the zoo", "book from your childhood",
                  "place to go on holiday", "breakfast", "football team", "word in English",
                  "song to sing along to"),
    }, 22),
    ("Have you ever {experience}{tail}?", {
        "experience": ("been to Brazil", "seen a blue whale", "tried mango ice cream",
                       "ridden a motorbike", "climbed a mountain", "played the bagpipes",
                       "watched the sun rise over the sea", "baked your own bread",
                       "flown in a hot air balloon", "swum in a frozen lake",
                       "milked a cow", "met a famous person", "broken a bone",
                       "won a prize", "built a snowman", "picked wild mushrooms",
                       "slept in a tent", "lost your passport", "played in a band",
                       "visited Mumbai"),
        "tail": ("", " before", " in your life", " on holiday"),
    }, 22),
    ("Would you rather {choice}?", {
        "choice": (
            _pairs(("live by the sea", "live in the mountains", "live in a big city",
                    "live on a quiet farm"), " or ")
            + _pairs(("have a puppy", "have a kitten", "have a parrot", "have a tortoise"), " or ")
            + _pairs(("travel by boat", "travel by plane", "travel by train",
                      "travel by bicycle"), " or ")
            + _pairs(("be able to fly", "be invisible", "breathe under water",
                      "speak every language"), " or ")
        ),
    }, 22),
    ("{apology}, {reason}.", {
        "apology": ("I'm so sorry I'm late", "Sorry for being late", "Apologies for the delay",
                    "Forgive me for keeping you waiting"),
        "reason": ("the bus broke down", "my alarm did not go off",
                   "there was a big traffic jam", "I missed the first train",
                   "the lift was out of order", "I could not find my keys",
                   "the roads were flooded"),
    }, 15),
    ("{sorry}, I did not {catch} {what}{tail}", {
        "sorry": ("Sorry", "I'm sorry", "Apologies"),
        "catch": ("catch", "hear", "understand"),
        "what": ("that", "what you said", "the last part", "your name", "the address"),
        "tail": (".", ", could you say it again?", ", could you speak a bit louder?",
                 ", would you repeat that, please?", ", could you spell it for me?"),
    }, 22),

    # Requests to the robot and its replies.
    ("{ask} {action}{tail}?", {
        "ask": ("Could you", "Would you", "Can you", "Will you", "Could you possibly"),
        "action": ("turn the music down", "open the window a little",
                   "play some soft piano music", "book a table for two",
                   "switch off the lights in the bedroom", "call my brother Pablo",
                   "read me the morning news", "set an alarm for seven",
                   "help me find my blue phone", "check if the post has arrived",
                   "put the film on pause", "make the room a bit warmer",
                   "tell me a funny story", "spell the word beautiful",
                   "show me photos from the beach", "order a pizza with mushrooms",
                   "find a bus to the museum", "move the lamp closer to the sofa",
                   "remind me about the meeting", "lower the blinds in the living room",
                   "translate this menu into English", "look up the weather for tomorrow",
                   "wake me up at half past six", "water the plants on the balcony"),
        "tail": ("", ", please", " for me", " right now", " when you have a moment"),
    }, 38),
    ("{ok}, I will {task} {when}.", {
        "ok": ("Sure", "Of course", "Certainly", "No problem", "All right", "Okay"),
        "task": ("remind you about the dentist", "turn off the oven",
                 "play your favourite podcast", "book the table", "send the message to Bob",
                 "water the plants", "check the bus times", "order more coffee beans",
                 "lock the back door", "bring you a blanket", "call the plumber",
                 "tidy up the playroom"),
        "when": ("right away", "in a moment", "as soon as I can", "straight away",
                 "in five minutes"),
    }, 27),
    ("{shall} {action}{tail}?", {
        "shall": ("Shall I", "Would you like me to", "Should I", "Do you want me to"),
        "action": ("open the curtains", "turn on the heating", "make a pot of coffee",
                   "play some music", "dim the lights", "close the back door",
                   "fold the laundry", "vacuum the living room", "feed the fish",
                   "water the basil", "start the washing machine", "put the kettle on",
                   "check the mailbox", "lock the front door"),
        "tail": ("", " now", " for you", " before you go", " while you rest"),
    }, 32),
    ("I can help you {task}{tail}.", {
        "task": ("plan your week", "find a recipe for dinner", "practise your French",
                 "learn the names of the planets", "write a birthday message",
                 "check the bus timetable", "choose a film to watch", "book a taxi",
                 "remember your medicine", "look up the football scores",
                 "sort your photos", "count your steps"),
        "tail": ("", " if you like", " right now", " whenever you want", " this evening"),
    }, 22),
    ("I {verb} your {thing} {place}.", {
        "verb": ("put", "left", "found", "saw"),
        "thing": ("keys", "glasses", "phone", "wallet", "blue scarf", "headphones",
                  "library book", "umbrella", "passport", "gloves"),
        "place": ("on the kitchen table", "by the front door", "in the top drawer",
                  "under the sofa cushions", "next to the microwave", "in your coat pocket",
                  "beside the fruit bowl", "on the bathroom shelf"),
    }, 32),
    ("Please remind me to {task} {when}.", {
        "task": ("call the plumber", "feed the cat", "take my vitamins", "pay the phone bill",
                 "buy flowers for Mum", "move the car", "water the tomatoes", "book the vet",
                 "email Professor Moore", "pick up the kids", "return the library books",
                 "phone the bank"),
        "when": ("at five", "after dinner", "tomorrow morning", "in an hour", "on Friday",
                 "before bed", "when I get home"),
    }, 14),
    ("Could you remind me to {task} {when}?", {
        "task": ("buy more milk", "post the letter", "charge my phone", "ring Grandma",
                 "empty the dishwasher", "bring the umbrella", "check the oven",
                 "book the plumber", "pay the rent", "walk the dog", "send the photos to Paul",
                 "buy a birthday card"),
        "when": ("at noon", "after lunch", "this evening", "in ten minutes", "on Monday",
                 "before I leave", "at half past four"),
    }, 14),
    ("Your {appointment} is {day} at {time}.", {
        "appointment": ("dentist appointment", "yoga class", "piano lesson",
                        "meeting with Paul", "video call with Grandma", "doctor's visit",
                        "football practice", "haircut", "job interview", "swimming lesson"),
        "day": ("today", "tomorrow", "on Monday", "on Tuesday", "on Wednesday", "on Thursday",
                "on Friday", "on Saturday", "next Wednesday"),
        "time": ("nine fifteen", "half past two", "a quarter past four", "ten in the morning",
                 "seven thirty", "noon", "a quarter to five", "eleven o'clock"),
    }, 32),
    ("{can} we move the {meeting} to {slot}?", {
        "can": ("Can", "Could"),
        "meeting": ("budget meeting", "team lunch", "project review", "phone call with Beatrice",
                    "board meeting", "interview", "workshop"),
        "slot": ("Monday morning", "Tuesday afternoon", "Wednesday at ten",
                 "Thursday after lunch", "Friday at noon", "next Monday",
                 "the end of the month", "tomorrow morning", "the day after tomorrow"),
    }, 22),
    ("{lead} to {act}{tail}.", {
        "lead": ("Remember", "Don't forget", "It is time", "Please try"),
        "act": ("drink a glass of water", "take your pills",
                "stretch your back and shoulders", "go for a short walk",
                "check your blood pressure", "get some fresh air",
                "rest your eyes for a moment", "eat some fruit", "book your flu vaccine",
                "move around a bit", "phone your brother", "open a window"),
        "tail": ("", " now", " this afternoon", " before bedtime"),
    }, 22),

    # Directions.
    ("The {place} is {relation} the {landmark}{end}", {
        "place": _TOWN_PLACES,
        "relation": ("just behind", "right next to", "across the road from", "opposite",
                     "two blocks past", "around the corner from", "a short walk from",
                     "on the far side of"),
        "landmark": ("old church", "big fountain", "blue bridge", "main square", "city park",
                     "petrol station", "supermarket", "old windmill", "football stadium",
                     "harbour", "clock tower", "hospital"),
        "end": (".",),
    }, 38),
    ("Turn {side} at the {landmark}, then {walk}.", {
        "side": ("left", "right"),
        "landmark": ("traffic lights", "roundabout", "bakery", "second crossing",
                     "big oak tree", "red post box", "petrol station", "school gates",
                     "bus shelter", "end of the road"),
        "walk": ("walk about two hundred metres", "keep going for five minutes",
                 "go straight ahead", "walk past the bus stop", "follow the path up the hill",
                 "walk three more blocks", "look for a blue door", "carry on along the river"),
    }, 27),
    ("{excuse}, {question} the {place}?", {
        "excuse": ("Excuse me", "Pardon me", "Sorry to bother you", "Hello there"),
        "question": ("how do I get to", "where is", "is this the way to", "how far is",
                     "which bus goes to", "can I walk to"),
        "place": _TOWN_PLACES,
    }, 32),
    ("The {room} is on the {floor} floor, {position}.", {
        "room": ("meeting room", "cafeteria", "gym", "doctor's office", "music room",
                 "reading room", "photocopier", "first aid room", "lost property office",
                 "baby changing room"),
        "floor": ("first", "second", "third", "fourth", "fifth", "top", "ground"),
        "position": ("next to the lifts", "at the end of the hall", "past the vending machines",
                     "opposite the stairs", "on your left", "just behind the glass doors",
                     "beside the big window", "by the coffee machine"),
    }, 22),

    # Weather.
    ("{day} will be {conditions}.", {
        "day": ("Tomorrow", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                "Saturday", "Sunday", "The weekend", "The whole week"),
        "conditions": ("mostly sunny, with a gentle breeze",
                       "cold and grey, with a chance of snow",
                       "warm and humid, with thunder in the evening",
                       "wet and windy, with heavy rain by noon",
                       "foggy in the morning, then bright and mild",
                       "bright but chilly, with frost overnight",
                       "cloudy, with a few light showers",
                       "hot and dry, so bring plenty of water", "breezy, with sunny spells",
                       "mild and damp, with drizzle on and off", "very windy near the coast",
                       "freezing, with icy pavements in the morning",
                       "pleasant and calm, with blue skies",
                       "stormy, with strong gusts from the west", "grey and muggy all day",
                       "cool and clear, perfect for a walk", "rainy in the morning but dry later",
                       "sunny and warm, around twenty-five degrees",
                       "snowy in the hills and wet in the valleys",
                       "changeable, with sunshine and showers"),
    }, 38),
    ("{remind} to {verb} {item}{when}.", {
        "remind": ("Don't forget", "Remember", "Make sure"),
        "verb": ("take", "bring", "pack"),
        "item": ("an umbrella", "your warm gloves", "a woollen scarf", "some sunscreen",
                 "your raincoat", "a bottle of water", "your boots", "a spare jumper",
                 "your sunglasses", "a thick coat"),
        "when": ("", " today", " this afternoon", " when you go out", " for the walk",
                 " on the boat trip"),
    }, 27),
    ("What a {adj} {time} for a {activity}!", {
        "adj": ("beautiful", "perfect", "lovely", "miserable", "gloomy", "glorious",
                "freezing", "windy"),
        "time": ("morning", "afternoon", "evening", "day"),
        "activity": ("picnic", "bike ride", "walk by the sea", "swim in the lake", "barbecue",
                     "game of football", "boat trip", "mug of hot cocoa"),
    }, 22),
    ("Is it going to {weather} {when}?", {
        "weather": ("rain", "snow", "be windy", "be warm", "be foggy", "freeze", "thunder",
                    "be cold"),
        "when": ("this afternoon", "tomorrow morning", "on Thursday", "over the weekend",
                 "during the match", "for the wedding", "later tonight", "on Monday morning"),
    }, 16),
    ("The temperature will {change} degrees {when}.", {
        "change": tuple(f"{direction} to {degrees}" for directions, temperatures in (
            (("drop", "fall"), ("minus five", "zero", "three", "eight", "twelve")),
            (("rise", "climb"), ("fifteen", "nineteen", "twenty-two", "twenty-seven",
                                 "thirty-one")),
        ) for direction in directions for degrees in temperatures),
        "when": ("tonight", "by Friday", "this afternoon", "over the weekend",
                 "in the mountains", "near the coast"),
    }, 16),
    ("If it {weather_plan}.", {"weather_plan": _IF_WEATHER_PLANS}, 27),

    # Cooking and food.
    ("{step}, {action}.", {
        "step": ("First", "Next", "Then", "After that", "Now"),
        "action": ("chop the onions into small pieces", "boil the pasta for nine minutes",
                   "melt the butter in a deep pan", "whisk the eggs with a pinch of salt",
                   "peel the potatoes and cut them in half", "bake the bread for forty minutes",
                   "stir the soup slowly with a wooden spoon", "mix the flour with the warm milk",
                   "grate some cheese over the top", "rinse the rice until the water is clear",
                   "fry the mushrooms until they are golden",
                   "slice the peppers into thin strips", "pour the batter into the buttered tin",
                   "roll the dough out on the table", "squeeze half a lemon over the fish",
                   "add a spoonful of honey", "let the sauce simmer for ten minutes",
                   "sprinkle the parsley on top", "crack two eggs into the bowl",
                   "warm the plates in the oven", "mash the potatoes with a fork",
                   "toast the pumpkin seeds in a dry pan", "cover the pot and lower the heat",
                   "leave the cake to cool on a rack", "spread the jam over the sponge",
                   "taste the stew and add more pepper", "beat the cream until it is thick",
                   "brush the pastry with melted butter", "soak the beans overnight in cold water",
                   "cut the mango into cubes", "blend the soup until it is smooth",
                   "season the lamb with salt and rosemary", "put the muffins on the top shelf",
                   "drain the peas and keep them warm", "fold the berries gently into the mix",
                   "serve the pie with a scoop of ice cream"),
    }, 43),
    ("{offer} {dish}?", {
        "offer": ("Would you like", "Do you fancy", "How about", "Shall I make you"),
        "dish": (
            tuple(f"{f} for breakfast" for f in (
                "porridge with blueberries", "a boiled egg and toast",
                "pancakes with maple syrup", "a bowl of muesli", "scrambled eggs on toast",
                "a banana smoothie"))
            + tuple(f"{f} {m}" for f in (
                "pumpkin soup", "mushroom risotto", "a vegetable curry",
                "baked potatoes with beans", "spaghetti with meatballs", "fish pie",
                "a cheese omelette", "pea and mint soup", "a big green salad",
                "roast chicken with peppers")
                for m in ("for lunch", "for dinner", "for supper", "tonight"))
            + tuple(f"{f} {m}" for f in (
                "apple crumble", "a slice of plum cake", "some mango sorbet",
                "a bowl of warm rice pudding", "chocolate mousse")
                for m in ("for dessert", "after dinner"))
        ),
    }, 27),
    ("{lead} {dish} needs {amount} {ingredient}{end}", {
        "lead": ("This", "I think this", "Hmm, this"),
        "dish": ("soup", "sauce", "stew", "curry", "omelette", "risotto"),
        "amount": ("more", "a little more", "a bit less", "a bit more"),
        "ingredient": ("salt", "pepper", "garlic", "lemon juice", "basil", "chilli", "butter",
                       "cream", "paprika"),
        "end": (".", "!"),
    }, 19),
    ("{lead} {dish} needs {amount} {ingredient}{end}", {
        "lead": ("This", "I think this", "Hmm, this"),
        "dish": ("pie", "cake mix", "custard", "smoothie", "porridge", "fruit salad"),
        "amount": ("more", "a little more", "a bit less", "a spoonful more"),
        "ingredient": ("sugar", "honey", "cinnamon", "milk", "vanilla", "maple syrup"),
        "end": (".", "!"),
    }, 14),
    ("{how_long} {task}?", {
        "how_long": ("How long should I", "How long do I need to", "For how many minutes should I"),
        "task": ("boil the eggs", "bake the muffins", "roast the chicken",
                 "leave the dough to rise", "steam the broccoli", "grill the fish",
                 "simmer the beans", "fry the mushrooms", "cook the rice", "poach the pears",
                 "toast the bread", "chill the pudding", "knead the bread dough", "rest the meat",
                 "heat up the soup", "whip the cream"),
    }, 19),
    ("You will need {pair}.", {
        "pair": _pairs(("two cups of flour", "half a cup of sugar", "three large eggs",
                        "a pinch of nutmeg", "one spoon of honey", "four ripe bananas",
                        "a bag of frozen peas", "five hundred grams of beef",
                        "a bottle of milk", "seven fresh basil leaves", "a tin of tomatoes",
                        "a small pumpkin"), " and "),
    }, 22),
    ("Please pass the {pair}.", {
        "pair": _pairs(("butter", "pepper", "bread", "mustard", "maple syrup", "potatoes",
                        "peas", "plums", "bowl of berries", "olive oil", "vinegar",
                        "big spoon"), " and the "),
    }, 14),
    ("Could you pass me the {pair}?", {
        "pair": _pairs(("salt", "milk", "jam", "brown sugar", "pepper mill", "warm rolls",
                        "fruit bowl", "honey", "teapot", "apple juice", "butter knife",
                        "cheese board"), " and the "),
    }, 14),

    # Shopping.
    ("{lead}how much {item}?", {
        "lead": ("", "Excuse me, ", "Sorry, ", "Hi, "),
        "item": ("is this blue umbrella", "are these leather boots", "is the bag of potatoes",
                 "are the fresh peaches", "is a return ticket to Bristol",
                 "is the big bunch of flowers", "are the strawberries today",
                 "is a cup of coffee here", "are the tickets for the museum",
                 "is the purple bicycle in the window", "are two loaves of bread",
                 "is the room with a sea view", "is it to post this parcel to Poland",
                 "are the pumpkins by the door"),
    }, 19),
    ("{lead} {price}{tail}", {
        "lead": ("It costs", "That will be", "The total is", "That comes to"),
        "price": ("three dollars and fifty cents", "twelve pounds ninety-nine",
                  "forty-five euros", "nine dollars exactly", "one hundred and twenty dollars",
                  "seventeen euros and eighty cents", "six pounds",
                  "two hundred and fifty euros", "eighty-nine pence",
                  "fourteen dollars and five cents", "sixty-two pounds",
                  "one thousand and five euros"),
        "tail": (".", ", please.", ", including tax.", " with the discount.", ", cash or card?"),
    }, 27),
    ("We {have} {item}, so {request}", {
        "have": ("are out of", "have run out of", "are nearly out of", "need more"),
        "item": ("milk", "bread", "coffee", "butter", "apples", "rice", "oat milk",
                 "washing powder", "bin bags", "tomatoes", "porridge oats", "biscuits"),
        "request": ("please buy some on your way home.", "could you get some at the market?",
                    "please pick some up after work.", "put that on the shopping list.",
                    "let's buy some tomorrow morning.",
                    "could you grab some from the corner shop?"),
    }, 32),
    ("The {shop} {hours} {days}.", {
        "shop": ("bakery", "pharmacy", "supermarket", "bookshop", "butcher", "flower market",
                 "post office", "bank", "hardware store"),
        "hours": tuple(f"opens at {t}" for t in (
            "seven in the morning", "half past eight", "nine o'clock", "a quarter to ten",
            "ten sharp")) + tuple(f"closes at {t}" for t in (
                "five o'clock", "half past six", "a quarter past seven",
                "eight in the evening", "noon")),
        "days": ("on Mondays", "on Saturdays", "on Sundays", "during the holidays",
                 "every weekday"),
    }, 27),
    ("I would like to {verb} {item_reason}.", {
        "verb": ("return", "exchange"),
        "item_reason": tuple(f"{item}, because {reason}" for item, reasons in (
            ("these shoes", ("they are too small", "they hurt my feet",
                             "the sole is coming off")),
            ("this jacket", ("the zip is broken", "the sleeves are too long",
                             "the colour is wrong")),
            ("this phone", ("the battery dies by noon", "the screen flickers",
                            "the camera is blurry")),
            ("this lamp", ("the bulb buzzes", "it keeps flickering", "the switch is broken")),
            ("this blender", ("it makes a terrible noise", "the lid does not fit",
                              "the motor smells of burning")),
        ) for reason in reasons),
    }, 16),
    ("{name} bought a {adj} {thing} from {seller}.", {
        "name": _NAMES,
        "adj": ("purple", "bright blue", "big brown", "new", "vintage", "maple", "bamboo",
                "velvet", "tiny", "polka-dot"),
        "thing": ("lamp", "bicycle", "umbrella", "mirror", "photo frame", "pillow", "broom",
                  "map", "vase", "bowl"),
        "seller": ("the market", "a little shop in Boston", "a man at the flea market",
                   "an online store", "the shop next door", "a friend from work",
                   "the museum gift shop"),
    }, 38),

    # Travel.
    ("The {vehicle_stop} at {time}.", {
        "vehicle_stop": tuple(
            f"{vehicle} to {city} leaves from {stop}"
            for vehicle, stops in (
                ("train", ("platform two", "platform seven", "platform nine")),
                ("bus", ("stop B", "the bus station", "bay fourteen")),
                ("coach", ("the main square", "the airport car park")),
            )
            for stop in stops for city in _CITIES
        ) + tuple(
            f"ferry to {port} leaves from {pier}"
            for port in ("the island", "Calais", "Santander", "Bilbao", "Dublin", "Belfast")
            for pier in ("the north pier", "the harbour", "berth four")
        ),
        "time": ("ten past nine", "half past seven", "a quarter to twelve", "six in the evening",
                 "noon", "five past one", "eight fifteen", "midnight"),
    }, 27),
    ("{afraid} the {vehicle} {status}.", {
        "afraid": ("I'm afraid", "Sorry,", "Unfortunately,", "Bad news,"),
        "vehicle": ("train to Madrid", "bus to the airport", "ferry to the island",
                    "morning flight to Boston", "number nine bus", "last tram",
                    "coach to Bordeaux"),
        "status": ("is running about fifteen minutes late", "has been cancelled",
                   "is delayed by half an hour", "is completely full",
                   "will be a little late", "has broken down"),
    }, 16),
    ("Let's go for a {outing} {when}.", {
        "outing": tuple(f"{activity} {place}" for activity, places in (
            ("walk", ("along the beach", "by the river", "in the park", "around the lake",
                      "through the woods", "up to the old windmill")),
            ("swim", ("in the lake", "in the sea", "at the public pool")),
            ("bike ride", ("along the beach", "by the river", "through the woods",
                           "around the lake")),
            ("picnic", ("in the park", "by the river", "on the hill")),
            ("run", ("in the park", "along the beach", "around the lake")),
            ("boat trip", ("on the lake", "around the bay", "up the river")),
            ("hike", ("up the mountain", "through the woods", "along the cliffs")),
        ) for place in places),
        "when": ("this afternoon", "after breakfast", "on Sunday", "before it gets dark",
                 "tomorrow morning", "if the weather is fine", "after work"),
    }, 27),
    ("How do you say {phrase} in {language}?", {
        "phrase": ("good morning", "thank you very much", "where is the beach", "I love you",
                   "happy birthday", "my name is Bob", "see you tomorrow", "good luck"),
        "language": ("French", "Spanish", "Portuguese", "Japanese", "Polish", "Arabic",
                     "Hindi", "Swahili", "German", "Mandarin"),
    }, 22),

    # People, hobbies, stories, plans.
    ("{name} {likes} {activity} {when}.", {
        "name": _NAMES,
        "likes": ("loves", "enjoys", "really likes", "is fond of"),
        "activity": ("painting birds", "playing the violin", "baking blueberry muffins",
                     "fishing by the lake", "building model boats", "swimming",
                     "reading mystery books", "playing board games", "walking the dog",
                     "growing pumpkins", "playing the bongo drums", "watching old films",
                     "knitting warm jumpers", "riding a motorbike", "singing in the choir",
                     "playing chess with friends"),
        "when": ("on weekends", "after school", "in the summer", "every evening",
                 "on rainy days", "in the early morning", "on Sunday afternoons",
                 "during the holidays"),
    }, 38),
    ("Last {time}, {subject} {event}.", {
        "time": ("summer", "winter", "spring", "autumn", "year", "month", "weekend"),
        "subject": ("my family", "my cousin Paul", "we", "my best friend", "Grandpa",
                    "my sister", "my neighbours", "Aunt Mabel"),
        "event": ("rented a boat on the lake", "visited a farm near Bristol",
                  "painted the fence blue", "moved to a bigger flat",
                  "climbed a volcano in Iceland", "built a treehouse in the garden",
                  "watched a meteor shower from the roof", "adopted a puppy from the shelter",
                  "played in a brass band", "lost a phone on the beach",
                  "went camping by a waterfall", "planted an apple tree",
                  "learned to make pizza from scratch", "ran a charity marathon"),
    }, 32),
    ("Next {time}, I {hope} {plan}.", {
        "time": ("year", "summer", "spring", "month", "week"),
        "hope": ("am going to", "hope to", "plan to", "want to", "would love to"),
        "plan": ("learn to play the piano", "visit my grandmother in Poland",
                 "run a half marathon", "paint the bedroom a pale blue",
                 "grow my own vegetables", "take a cooking class", "fix the old bicycle",
                 "spend a week by the sea", "move to Boston", "start a book club",
                 "improve my Spanish", "buy a small boat", "volunteer at the museum",
                 "finish my model ship"),
    }, 27),
    ("{lead} {subject} {opinion}.", {
        "lead": ("I think", "To be honest,", "In my opinion,", "Personally, I feel"),
        "subject": ("the new bridge", "the museum", "the old market", "the park by the river",
                    "the new library", "the harbour", "the town square", "the botanic garden",
                    "the castle", "the new playground"),
        "opinion": ("looks beautiful", "is a bit boring", "is perfect for the summer",
                    "deserves a prize", "is better than the old one", "could be improved",
                    "is very popular with families", "is worth a visit"),
    }, 27),
    ("{number} {animals} are {doing} {place}.", {
        "number": ("Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten",
                   "Eleven", "Twelve", "Fifteen", "Twenty"),
        "animals": ("ducks", "puppies", "monkeys", "penguins", "butterflies", "bumblebees",
                    "horses", "frogs", "rabbits", "sheep", "pigeons", "baby goats"),
        "doing": ("playing", "sleeping", "hiding", "waiting", "resting", "splashing about"),
        "place": ("by the pond", "under the big oak tree", "in the muddy field",
                  "behind the barn", "near the old boat", "on the bridge", "in the meadow",
                  "beside the path"),
    }, 27),
    ("{det} {thing} is {colour} with {pattern}.", {
        "det": ("My", "Her", "His", "Your", "The"),
        "thing": ("umbrella", "scarf", "backpack", "bicycle", "mug", "pillow", "notebook",
                  "jumper", "kite", "boat"),
        "colour": ("bright red", "pale blue", "dark green", "purple", "mustard yellow", "pink",
                   "black", "orange"),
        "pattern": ("white polka dots", "thin silver stripes", "little blue flowers",
                    "a big yellow star", "a map of the world", "tiny black birds",
                    "a picture of a fox"),
    }, 27),
    ("{team} {result} {when}.", {
        "team": ("Our team", "The home side", "My brother's club", "The blue team",
                 "The school team"),
        "result": ("won three to one", "lost two to nothing", "drew one all",
                   "won by five points", "beat the champions", "lost in the last minute",
                   "won on penalties", "drew nil all", "scored four goals",
                   "came back to win two to one"),
        "when": ("on Saturday", "last night", "in the final", "at the away match",
                 "in the pouring rain", "on Boxing Day"),
    }, 22),
    ("This {artifact} {where} {when}.", {
        "artifact": ("clay bowl was made", "bronze mirror was found", "wooden mask was carved",
                     "marble statue was carved", "gold coin was minted", "silk robe was woven",
                     "glass bottle was blown", "stone tablet was found", "painted vase was made",
                     "copper pot was made", "map was drawn"),
        "where": ("in Peru", "in a village in Japan", "near the Baltic Sea", "near Rome",
                  "in Persia", "on an island in Greece", "in southern Mexico", "in Mali"),
        "when": ("about two thousand years ago", "in the sixteenth century",
                 "over five hundred years ago", "about three thousand years ago",
                 "in the Middle Ages", "around nine hundred years ago"),
    }, 27),

    # Exclamations whose interjection agrees with the news.
    ("{interjection}, {news}!", {
        "interjection": ("Wow", "Hooray", "Brilliant", "Fantastic", "Oh, wonderful", "Yes"),
        "news": ("we won the match", "the package finally arrived",
                 "the baby took her first steps", "you passed your exam",
                 "it has stopped raining", "the cake looks amazing", "the puppy found its ball",
                 "the roses are blooming at last", "the bus is right on time",
                 "we have tickets for the concert"),
    }, 16),
    ("{interjection}, {news}!", {
        "interjection": ("Oh no", "Oh dear", "Whoops", "Oh bother", "Goodness me",
                         "Oh, for goodness' sake"),
        "news": ("the milk has boiled over", "I dropped my phone in the bath",
                 "we missed the last bus", "the printer is jammed again",
                 "the power has gone off", "the cat knocked over the vase",
                 "I forgot my umbrella", "the pipe is leaking again", "my bike has a flat tyre",
                 "we are out of bread"),
    }, 16),
)

# Small facts about science and nature, each said once, with a rotating frame.
_FACTS = (
    "octopuses have three hearts and blue blood",
    "the Moon drifts about four centimetres away from Earth every year",
    "Venus spins in the opposite direction to most planets",
    "sound travels about four times faster in water than in air",
    "honey found in ancient tombs can still be eaten",
    "a day on Mars lasts about forty minutes longer than ours",
    "lightning is hotter than the surface of the Sun",
    "frogs can breathe through their skin",
    "a blue whale's heart is about the size of a small car",
    "butterflies taste with their feet",
    "an adult human body has two hundred and six bones",
    "hummingbirds can fly backwards",
    "polar bears have black skin under their white fur",
    "water boils at a lower temperature on high mountains",
    "sunlight takes about eight minutes to reach the Earth",
    "bats are the only mammals that can truly fly",
    "a comet's tail always points away from the Sun",
    "elephants can pick up sounds through their feet",
    "Saturn is less dense than water",
    "owls cannot move their eyes in their sockets",
    "rubies and sapphires are made of the same mineral",
    "light travels about three hundred thousand kilometres every second",
    "wombats produce cube-shaped droppings",
    "some bamboo can grow almost a metre in a single day",
    "the Pacific is larger than all the land on Earth combined",
    "bees visit about two million flowers to make a pound of honey",
    "Mount Everest grows a few millimetres taller every year",
    "most of the air we breathe is nitrogen",
    "plants make their food from sunlight, water and carbon dioxide",
    "a group of flamingos is called a flamboyance",
    "the platypus is a mammal that lays eggs",
    "the Amazon carries more water than any other river",
    "pumice is a volcanic rock that can float on water",
    "sea otters sometimes hold paws while they sleep",
    "the smallest bones in your body are in your ears",
    "babies are born with nearly three hundred bones",
    "Jupiter has the shortest day of all the planets",
    "diamonds are made of pure carbon",
    "hippos make a reddish sweat that works like sunscreen",
    "the Moon has moonquakes, just as Earth has earthquakes",
    "a cheetah can sprint at about one hundred kilometres an hour",
    "your brain uses about a fifth of your body's energy",
    "the Eiffel Tower grows a little taller on hot summer days",
    "a bumblebee can fly higher than Mount Everest",
)
_FACT_FRAMES = ("Did you know that {}?", "Fun fact: {}.", "Believe it or not, {}.",
                "Here is something amazing: {}!")

# Sentences that fit no template, written one by one.
_STANDALONE = (
    "My battery is getting low, so I will go and charge for a while.",
    "I am a robot, but I really enjoy hearing about your day.",
    "Would you like me to play the piano music you liked yesterday?",
    "Please speak slowly, because the room is rather noisy.",
    "The bumblebees have found the purple flowers by the window.",
    "Hmm, let me think about that for a moment.",
    "Oh, you look wonderful in that blue jumper!",
    "Maybe we could bake something together this afternoon?",
    "My microphone works best when you stand about one metre away.",
    "Both of my cameras are working perfectly again.",
    "Mum phoned while you were out, and she will call back at four.",
    "Before bed, we could read another chapter of the pirate book.",
    "Vivian, your video call with the bank starts in five minutes.",
    "Whoever borrowed my umbrella, please bring it back!",
    "The movers will bring the big blue wardrobe on Monday morning.",
    "I'm not sure, but I can look it up for you.",
    "Everybody, please move a little closer so I can see you.",
    "Please wipe your muddy boots before you come in.",
    "Good job, you remembered every word of the poem!",
    "Why do pumpkins turn orange in the autumn?",
    "Four plus five makes nine, and nine minus two makes seven.",
    "Seven times eight is fifty-six, a tricky one to remember.",
    "Two hundred people came to the opening of the new museum.",
    "The baby is finally asleep, so please keep your voice down.",
    "Who wants a warm bowl of tomato soup?",
    "You have three new messages and one missed call.",
    "My favourite word in English is probably bubble.",
    "Please put the broken plates in the box marked glass.",
    "Could I borrow your blue pen for a minute?",
    "The plumber fixed the pipe, but the bathroom floor is still wet.",
    "Oh, what a beautiful painting of the harbour!",
    "Move the vase a bit to the left, please.",
    "Buses to the beach run every twenty minutes in summer.",
    "We moved the piano into the front room last week.",
    "The film was much better than the book, in my opinion.",
    "Every morning, my neighbour plays the trumpet at seven.",
    "Breathe in slowly, hold it, and now breathe out.",
    "Do you remember where we parked the van?",
    "Well done, that was your fastest time this month!",
    "I believe the fruit market moved to the old fire station.",
    "Mabel, your mother is waiting for you at the main entrance.",
    "Honestly, I have never seen so many balloons in one room.",
    "The museum is free for visitors on the first Sunday of the month.",
    "Your food delivery should arrive in about twenty minutes.",
    "Please don't feed the pigeons on the balcony.",
    "Bobby the beagle barked at the postman again this morning.",
    "Welcome to the Maple Street library, how may I help you?",
    "Should we paint the bedroom blue or pale green?",
    "Pass me the map, I think we missed the turning.",
    "My memory is full, so I will delete some old photos.",
    "Thank you for your patience, we are almost there.",
    "It's a boy, and both mother and baby are doing well!",
    "Five minutes of stretching every morning can make a big difference.",
    "Let me know if the music is too loud.",
    "I will move out of the way so you can pass.",
    "That puzzle was much harder than it looked!",
    "Is anybody home, or am I talking to myself again?",
    "The volunteers planted over one hundred trees in the park.",
    "Fold the paper in half, then fold it again.",
    "We should probably leave now, or we will miss the beginning.",
)


# --- generation ---------------------------------------------------------------------------------

def _slot_names(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field]


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def _fill(template: str, slots: dict[str, tuple[str, ...]], quota: int) -> list[str]:
    """`quota` distinct fillings at hash-chosen positions among all slot combinations: a
    well-mixed sample that needs no RNG and depends only on this family's own text."""
    names = _slot_names(template)
    sizes = [len(slots[name]) for name in names]
    total = math.prod(sizes)
    if quota > total:
        raise ValueError(f"sentence family {template!r} has {total} fillings, {quota} asked for")
    family = hashlib.sha256(repr((template, [slots[n] for n in names])).encode()).hexdigest()
    codes: dict[int, None] = {}  # insertion-ordered set
    draw = 0
    while len(codes) < quota:
        codes.setdefault(_digest(f"{family}:{draw}") % total)
        draw += 1
    out = []
    for code in codes:
        values = {}
        for name, size in zip(reversed(names), reversed(sizes)):  # mixed-radix digits
            code, digit = divmod(code, size)
            values[name] = slots[name][digit]
        text = template.format(**values)
        out.append(text[0].upper() + text[1:])
    return out


def normalise(sentence: str) -> str:
    """Lower case, letters and digits only: two sentences that differ only here sound alike."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", sentence.lower()).split())


def _generate() -> tuple[str, ...]:
    candidates = [s for template, slots, quota in _FAMILIES for s in _fill(template, slots, quota)]
    candidates += [_FACT_FRAMES[i % len(_FACT_FRAMES)].format(fact)
                   for i, fact in enumerate(_FACTS)]
    candidates += list(_STANDALONE)
    seen: set[str] = set()
    out = []
    for sentence in candidates:  # keep the first of sentences that only differ in punctuation
        key = normalise(sentence)
        if key not in seen:
            seen.add(key)
            out.append(sentence)
    return tuple(out)


SENTENCES: tuple[str, ...] = _generate()


def all_sentences() -> tuple[str, ...]:
    return SENTENCES


def split_of_text(sentence: str) -> str:
    """The split a sentence belongs to, from a hash of its normalised text (stable under edits)."""
    bucket = int(hashlib.sha256(normalise(sentence).encode()).hexdigest()[:8], 16) % 10
    if bucket in _TEST_BUCKETS:
        return "test"
    if bucket in _VAL_BUCKETS:
        return "val"
    return "train"


def sentence_split(index: int) -> str:
    """'train', 'val' or 'test' for the sentence at `index` of :data:`SENTENCES`."""
    if not 0 <= index < len(SENTENCES):
        raise ValueError(f"sentence index {index} out of range 0..{len(SENTENCES) - 1}")
    return split_of_text(SENTENCES[index])


def sentences_in(split: str) -> list[tuple[int, str]]:
    """(index, sentence) pairs of one split, in corpus order."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return [(i, s) for i, s in enumerate(SENTENCES) if split_of_text(s) == split]
