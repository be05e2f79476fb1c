//! Code list rules (BR-CL) and the country list BR-CO-09 uses.

use crate::model::{Invoice, Line};

use super::{LineRef, Out, Scope};

/// ISO 3166-1 alpha-2 codes as listed by the schematron for BR-CO-09
/// (which also accepts EL for Greece).
const VAT_PREFIXES: &str = "AD AE AF AG AI AL AM AN AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BL BJ BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH EL ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XI YE YT ZA ZM ZW";

fn in_list(list: &str, code: &str) -> bool {
    !code.is_empty() && !code.contains(' ') && list.split(' ').any(|c| c == code)
}

/// BR-CO-09: the VAT identifier starts with a country code (or EL).
pub(super) fn vat_prefix_ok(id: &str) -> bool {
    id.get(..2).is_some_and(|p| in_list(VAT_PREFIXES, p))
}

pub(super) fn document(_inv: &Invoice, _scope: Scope, _out: &mut Out) {}

pub(super) fn line(_l: &Line, _at: LineRef<'_>, _out: &mut Out) {}
