"""Text masks: one phrase, one image → each route's masks side by side; then one route over the whole working set."""

from dataclasses import replace

import streamlit as st

from components import text_masks_view as view
from components.images import pick_image
from components.sidebar import random_note
from components.state import get_working_set
from core.models.detection import split_phrases

st.title("Text masks")
st.caption(
    "Words to masks, several ways. **Grounded-SAM**: Grounding DINO finds a box for each thing the phrase names, "
    "each box prompts SAM. **OWLv2** does the same with another detector. **MaskCLIP → SAM**: CLIP's patch "
    "similarity to the phrase (MaskCLIP's value embeddings, which localise) puts points on SAM; the raw final-layer "
    "route shows why that change matters. Separate things with full stops: “a dog. a red car.”"
)

images = get_working_set()
if not images.items:
    st.info("The working set is empty. Add images on the Upload page.")
    st.stop()

phrase = st.text_input("What to find", "a cat.", key="tm_prompt", max_chars=2000)
routes = view.pick_routes(key="tm")
options = view.pick_options(key="tm")
models = view.route_models(routes, key="tm")
random_note([m for r in routes for m in models[r].values()])
compare, ask, whole_set = st.tabs(["Side by side", "Ask PaliGemma 2", "Instance segmentation (whole set)"])

try:
    split_phrases(phrase)
    problem = "" if routes else "Choose at least one route."
except ValueError as exc:
    problem = str(exc)

with compare:
    index = pick_image(images, "Image", key="tm_image")
    image, name = images.items[index].image, images.names[index]
    last = view.last_compare("tm")
    box = view.draw_exemplar(image, key="tm") if "sam3" in routes else None
    asked, chosen, blocked = phrase, routes, problem
    if problem and box is not None:  # SAM 3 can run on the exemplar box alone
        st.info(f"{problem} SAM 3 runs on the exemplar box alone.")
        asked, chosen, blocked = "", ["sam3"], ""
    if blocked:
        st.info(blocked)
        if (kept := last.get()) and kept[1] == name:
            st.caption(f"Earlier result, for “{kept[0]}”:")
            view.show_panels(image, kept[2], name, key="tm_kept")
    else:
        results = view.run_routes(image, asked, chosen, models, replace(options, exemplar_box=box))
        label = asked or "exemplar"
        last.set((label, name, {r: f for r, f in results.items() if not isinstance(f, str)}))
        view.show_panels(image, results, name, key="tm")
        view.show_exports(image, results, label, name, key="tm")

with ask:
    st.caption(f"About {name}, the image chosen under Side by side.")
    view.show_ask_vlm(image, phrase, options, key="tm_ask")

with whole_set:
    if problem:
        st.info(problem)
    else:
        view.show_set_mode(
            [it.image for it in images.items], images.names, phrase, routes, models, options, key="tm_set"
        )
