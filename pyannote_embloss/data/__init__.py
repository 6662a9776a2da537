"""Data: what goes into a model

* :mod:`.audio`: decoding, durations, damaged-file checks;
* :mod:`.augmentation`: training-chunk corruption (speed, babble, noise, reverberation);
* :mod:`.conditions`: test conditions (noise, reverberation, duration, telephone, channel),
  sharing augmentation's corruption code;
* :mod:`.trials`: the one Trial type, and where verification trials are drawn;
* :mod:`.protocols`: the corpora and importers (each a reader plus a split policy), the
  protocol file format (:mod:`.protocols.writer` writes it; :mod:`.protocols.lists`,
  :mod:`.protocols.rttm_uem` and :mod:`.protocols.file_record` read it back) and
  pyannote.database registration.
"""
