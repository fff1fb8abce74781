SELECT key, value FROM feed_state WHERE feed = $feed;
