"""Entry point: ``python app/app.py [--model ID|PATH] [--adapter DIR] [--load-in-4bit] [--host H] [--port P]``.

The app itself lives in the library (:mod:`mevqa.apps.gradio_app`) so that ``mevqa app`` and this script run the
same code with the same flags.
"""
from mevqa.apps.gradio_app import main

if __name__ == "__main__":
    main()
