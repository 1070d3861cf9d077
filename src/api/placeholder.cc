// placeholder until the API model lands
