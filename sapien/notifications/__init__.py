"""In-app notifications: the bell in the nav, the list, mark as read."""
