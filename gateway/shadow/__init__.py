"""Shadow traffic: sampled copies of an alias's requests sent to a candidate alias off the caller's path,
compared with the caller's answer pair by pair (`pair`), sent by a bounded queue of workers (`runner`)."""
