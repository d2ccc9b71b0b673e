

aPlaceholder*
dtype0

bPlaceholder*
dtype0

mulMulab*
T0