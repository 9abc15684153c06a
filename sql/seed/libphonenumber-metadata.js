// Prints the number-type metadata of the google-libphonenumber package as
// JSON on stdout, for sql/seed/gen-destinations.py.  Run by `make seed`
// with NODE_PATH pointing at the pinned package (see the Makefile).
//
// Output: {"package": "google-libphonenumber", "version": "...",
//          "codes": {"44": ["GB", "GG", ...], ...},      (main region first)
//          "regions": {"GB": {"cc": 44, "leading_digits": "..." | null,
//                             "same_mobile_and_fixed": bool,
//                             "types": {"general": [pattern, [lengths]],
//                                       "fixed_line": ..., ...}}, ...}}
// A type without a pattern is left out.  Non-geographic entities (region
// "001": +800, +808, +870, ...) are not listed: a destination needs a country.
'use strict';
const lib = require('google-libphonenumber');
const pkg = require('google-libphonenumber/package.json');

const util = lib.PhoneNumberUtil.getInstance();
const TYPES = [
  ['general', 'getGeneralDesc'],
  ['premium_rate', 'getPremiumRate'],
  ['toll_free', 'getTollFree'],
  ['shared_cost', 'getSharedCost'],
  ['voip', 'getVoip'],
  ['personal_number', 'getPersonalNumber'],
  ['pager', 'getPager'],
  ['uan', 'getUan'],
  ['voicemail', 'getVoicemail'],
  ['fixed_line', 'getFixedLine'],
  ['mobile', 'getMobile'],
];

const codes = {};
const regions = {};
for (const region of util.getSupportedRegions().slice().sort()) {
  const md = util.getMetadataForRegion(region);
  const cc = md.getCountryCode();
  if (!(cc in codes))
    codes[cc] = util.getRegionCodesForCountryCode(cc).slice();
  const types = {};
  for (const [name, getter] of TYPES) {
    const desc = md[getter]();
    if (desc == null)
      continue;
    const pattern = desc.getNationalNumberPatternOrDefault();
    if (pattern === '')
      continue;
    const lengths = desc.possibleLengthCount() > 0
      ? desc.possibleLengthArray().slice() : [];
    types[name] = [pattern, lengths];
  }
  regions[region] = {
    cc: cc,
    leading_digits: md.hasLeadingDigits() ? md.getLeadingDigits() : null,
    same_mobile_and_fixed: md.getSameMobileAndFixedLinePattern() === true,
    types: types,
  };
}
process.stdout.write(JSON.stringify({
  package: pkg.name, version: pkg.version, codes: codes, regions: regions,
}, null, 1) + '\n');
