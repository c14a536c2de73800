"""People who use Bulletin: accounts in the database (:mod:`.models`), their credentials
(:mod:`.credentials`) and how they are found and seeded (:mod:`.directory`)."""
