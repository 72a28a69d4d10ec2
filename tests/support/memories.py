"""Memories shared by the adapter tests: texts, ids and the metadata a memory store keeps."""

QUERY = "When did Caroline go to the LGBTQ support group?"
MEMORIES = [
    ("m1", "Caroline went to the LGBTQ support group yesterday.", {"date": "8 May 2023", "speaker": "Caroline"}),
    ("m2", "Melanie painted a sunrise over the lake.", {"date": "8 May 2023", "speaker": "Melanie"}),
    ("m3", "Caroline is researching adoption agencies.", {"date": "25 May 2023", "speaker": "Caroline"}),
    ("m4", "Melanie ran a charity race for mental health.", {"date": "25 May 2023", "speaker": "Melanie"}),
    ("m5", "It rained all weekend, so we stayed in and played board games.", {"date": "9 June 2023"}),
]
#: A fake API key the tests check never leaks.
SECRET = "sk-memos-do-not-leak-4242"
#: The memories as ``document_template="[{date}] {text}"`` renders them with ``speaker`` prepended by ": " (what the
#: adapter tests expect to reach the model).
TEMPLATED_TEXTS = [
    "[8 May 2023] Caroline: Caroline went to the LGBTQ support group yesterday.",
    "[8 May 2023] Melanie: Melanie painted a sunrise over the lake.",
    "[25 May 2023] Caroline: Caroline is researching adoption agencies.",
    "[25 May 2023] Melanie: Melanie ran a charity race for mental health.",
    "[9 June 2023] It rained all weekend, so we stayed in and played board games.",
]
#: Seven short memories for the hosted backend's service tests.
HOSTED_QUERY = "Where did Caroline go last week?"
HOSTED_DOCS = [
    "Caroline went to an LGBTQ support group last week.",
    "Melanie painted a lake at sunrise.",
    "Caroline said the group was where she felt at home.",
    "It rained all day in the city.",
    "Melanie and Caroline went to a pottery class.",
    "The dog chased the ball in the park.",
    "Last week Caroline went hiking with friends.",
]
