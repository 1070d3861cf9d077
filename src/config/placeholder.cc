// placeholder: removed when the unit lands
