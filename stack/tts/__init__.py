"""TTS service of the bundled stack: the Chatterbox TTS API subset, spoken by eSpeak NG."""
