//! Code list rules (BR-CL) and the country list BR-CO-09 uses.
//!
//! The lists are those of the CEN artefacts (validation 1.3.x), kept as
//! space-separated strings and searched linearly: a code is looked up a few
//! times per invoice (per line only for the VAT category and the item
//! classification), so a set would buy nothing measurable.
//!
//! Not checked: BR-CL-03 (the currency of every amount; the canonical model
//! keeps one currency per invoice, the readers report a foreign currencyID),
//! BR-CL-08 (note subject codes, UNCL 4451, CII only), BR-CL-23 (unit codes:
//! UN/ECE Rec 20 has 2,000 codes revised every year, and a stale copy would
//! reject valid invoices).

use crate::model::{Invoice, Line, Syntax};

use super::{LineRef, Out, Scope};

/// ISO 3166-1 alpha-2, with 1A (Kosovo) and XI (Northern Ireland) as the
/// artefacts accept them.
const COUNTRIES: &str = "1A AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XI YE YT ZA ZM ZW";

/// ISO 4217 alpha-3 (current and recently withdrawn codes).
const CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BYR BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRO MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STD STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VEF VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG ZWL";

/// UNTDID 1001, the invoice and credit note codes EN 16931 accepts.
const TYPE_CODES: &str = "71 80 81 82 83 84 102 130 202 203 204 211 218 219 261 262 295 296 308 325 326 331 380 381 382 383 384 385 386 387 388 389 390 393 394 395 396 420 456 457 458 471 472 473 500 501 502 503 527 532 553 575 623 633 751 780 817 870 875 876 877 935";

/// UNTDID 2005 subset for BT-8 in UBL (invoice date, delivery date,
/// payment date).
const TAX_POINT_CODES: &str = "3 35 432";

/// The same three meanings as UNTDID 2475 codes, which CII uses (the CII
/// reader may also hand them over already translated to UNTDID 2005).
const TAX_POINT_CODES_CII: &str = "5 29 72 3 35 432";

/// UNCL 4461 payment means.
const PAYMENT_MEANS: &str = "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65 66 67 68 70 74 75 76 77 78 91 92 93 94 95 96 97 98 ZZZ";

/// UNCL 5305 subset: the VAT categories of EN 16931.
const VAT_CATEGORIES: &str = "AE L M E S Z G O K B";

/// UNCL 5189 subset: allowance reason codes.
const ALLOWANCE_REASONS: &str = "41 42 60 62 63 64 65 66 67 68 70 71 88 95 100 102 103 104 105";

/// UNCL 7161: charge reason codes.
const CHARGE_REASONS: &str = "AA AAA AAC AAD AAE AAF AAH AAI AAS AAT AAV AAY AAZ ABA ABB ABC ABD ABF ABK ABL ABN ABR ABS ABT ABU ACF ACG ACH ACI ACJ ACK ACL ACM ACS ADC ADE ADJ ADK ADL ADM ADN ADO ADP ADQ ADR ADT ADW ADY ADZ AEA AEB AEC AED AEF AEH AEI AEJ AEK AEL AEM AEN AEO AEP AES AET AEU AEV AEW AEX AEY AEZ AJ AU CA CAB CAD CAE CAF CAI CAJ CAK CAL CAM CAN CAO CAP CAQ CAR CAS CAT CAU CAV CAW CAX CAY CAZ CD CG CS CT DAB DAC DAD DAF DAG DAH DAI DAJ DAK DAL DAM DAN DAO DAP DAQ DL EG EP ER FAA FAB FAC FC FH FI GAA HAA HD HH IAA IAB ID IF IR IS KO L1 LA LAA LAB LF MAE MI ML NAA OA PA PAA PC PL PRV RAB RAC RAD RAF RE RF RH RV SA SAA SAD SAE SAI SG SH SM SU TAB TAC TT TV V1 V2 WH XAA YY ZZZ";

/// UNTDID 7143: item classification schemes.
const CLASSIFICATION_SCHEMES: &str = "AA AB AC AD AE AF AG AH AI AJ AK AL AM AN AO AP AQ AR AS AT AU AV AW AX AY AZ BA BB BC BD BE BF BG BH BI BJ BK BL BM BN BO BP BQ BR BS BT BU BV BW BX BY BZ CC CG CL CR CV DR DW EC EF EMD EN FS GB GMN GN GS HS IB IN IS IT IZ MA MF MN MP NB ON PD PL PO PV QS RC RN RU RY SA SG SK SN SRS SRT SRU SRV SRW SRX SRY SRZ SS SSA SSB SSC SSD SSE SSF SSG SSH SSI SSJ SSK SSL SSM SSN SSO SSP SSQ SSR SSS SST SSU SSV SSW SSX SSY SSZ ST STA STB STC STD STE STF STG STH STI STJ STK STL STM STN STO STP STQ STR STS STT STU STV STW STX STY STZ SUA SUB SUC SUD SUE SUF SUG SUH SUI SUJ SUK SUL SUM TG TSN TSO TSP TSQ TSR TSS TST TSU UA UP VN VP VS VX ZZZ";

/// UNTDID 1153: reference qualifiers, for BT-18's scheme.
const OBJECT_SCHEMES: &str = "AAA AAB AAC AAD AAE AAF AAG AAH AAI AAJ AAK AAL AAM AAN AAO AAP AAQ AAR AAS AAT AAU AAV AAW AAX AAY AAZ ABA ABB ABC ABD ABE ABF ABG ABH ABI ABJ ABK ABL ABM ABN ABO ABP ABQ ABR ABS ABT ABU ABV ABW ABX ABY ABZ AC ACA ACB ACC ACD ACE ACF ACG ACH ACI ACJ ACK ACL ACN ACO ACP ACQ ACR ACT ACU ACV ACW ACX ACY ACZ ADA ADB ADC ADD ADE ADF ADG ADI ADJ ADK ADL ADM ADN ADO ADP ADQ ADT ADU ADV ADW ADX ADY ADZ AE AEA AEB AEC AED AEE AEF AEG AEH AEI AEJ AEK AEL AEM AEN AEO AEP AEQ AER AES AET AEU AEV AEW AEX AEY AEZ AF AFA AFB AFC AFD AFE AFF AFG AFH AFI AFJ AFK AFL AFM AFN AFO AFP AFQ AFR AFS AFT AFU AFV AFW AFX AFY AFZ AGA AGB AGC AGD AGE AGF AGG AGH AGI AGJ AGK AGL AGM AGN AGO AGP AGQ AGR AGS AGT AGU AGV AGW AGX AGY AGZ AHA AHB AHC AHD AHE AHF AHG AHH AHI AHJ AHK AHL AHM AHN AHO AHP AHQ AHR AHS AHT AHU AHV AHX AHY AHZ AIA AIB AIC AID AIE AIF AIG AIH AII AIJ AIK AIL AIM AIN AIO AIP AIQ AIR AIS AIT AIU AIV AIW AIX AIY AIZ AJA AJB AJC AJD AJE AJF AJG AJH AJI AJJ AJK AJL AJM AJN AJO AJP AJQ AJR AJS AJT AJU AJV AJW AJX AJY AJZ AKA AKB AKC AKD AKE AKF AKG AKH AKI AKJ AKK AKL AKM AKN AKO AKP AKQ AKR AKS AKT AKU AKV AKW AKX AKY AKZ ALA ALB ALC ALD ALE ALF ALG ALH ALI ALJ ALK ALL ALM ALN ALO ALP ALQ ALR ALS ALT ALU ALV ALW ALX ALY ALZ AMA AMB AMC AMD AME AMF AMG AMH AMI AMJ AMK AML AMM AMN AMO AMP AMQ AMR AMS AMT AMU AMV AMW AMX AMY AMZ ANA ANB ANC AND ANE ANF ANG ANH ANI ANJ ANK ANL ANM ANN ANO ANP ANQ ANR ANS ANT ANU ANV ANW ANX ANY AOA AOD AOE AOF AOG AOH AOI AOJ AOK AOL AOM AON AOO AOP AOQ AOR AOS AOT AOU AOV AOW AOX AOY AOZ AP APA APB APC APD APE APF APG APH API APJ APK APL APM APN APO APP APQ APR APS APT APU APV APW APX APY APZ AQA AQB AQC AQD AQE AQF AQG AQH AQI AQJ AQK AQL AQM AQN AQO AQP AQQ AQR AQS AQT AQU AQV AQW AQX AQY AQZ ARA ARB ARC ARD ARE ARF ARG ARH ARI ARJ ARK ARL ARM ARN ARO ARP ARQ ARR ARS ART ARU ARV ARW ARX ARY ARZ ASA ASB ASC ASD ASE ASF ASG ASH ASI ASJ ASK ASL ASM ASN ASO ASP ASQ ASR ASS AST ASU ASV ASW ASX ASY ASZ ATA ATB ATC ATD ATE ATF ATG ATH ATI ATJ ATK ATL ATM ATN ATO ATP ATQ ATR ATS ATT ATU ATV ATW ATX ATY ATZ AU AUA AUB AUC AUD AUE AUF AUG AUH AUI AUJ AUK AUL AUM AUN AUO AUP AUQ AUR AUS AUT AUU AUV AUW AUX AUY AUZ AV AVA AVB AVC AVD AVE AVF AVG AVH AVI AVJ AVK AVL AVM AVN AVO AVP AVQ AVR AVS AVT AVU AVV AVW AVX AVY AVZ AWA AWB AWC AWD AWE AWF AWG AWH AWI AWJ AWK AWL AWM AWN AWO AWP AWQ AWR AWS AWT AWU AWV AWW AWX AWY AWZ AXA AXB AXC AXD AXE AXF AXG AXH AXI AXJ AXK AXL AXM AXN AXO AXP AXQ AXR AXS BA BC BD BE BH BM BN BO BR BT BTP BW CAS CAT CAU CAV CAW CAX CAY CAZ CBA CBB CD CEC CED CFE CFF CFO CG CH CK CKN CM CMR CN CNO COF CP CR CRN CS CST CT CU CV CW CZ DA DAN DB DI DL DM DQ DR EA EB ED EE EEP EI EN EQ ER ERN ET EX FC FF FI FLW FN FO FS FT FV FX GA GC GD GDN GN HS HWB IA IB ICA ICE ICO II IL INB INN INO IP IS IT IV JB JE LA LAN LAR LB LC LI LO LRC LS MA MB MF MG MH MR MRN MS MSS MWB NA NF OH OI ON OP OR PB PC PD PE PF PI PK PL POR PP PQ PR PS PW PY RA RC RCN RE REN RF RR RT SA SB SD SE SEA SF SH SI SM SN SP SQ SRN SS STA SW SZ TB TCR TE TF TI TIN TL TN TP UAR UC UCN UN UO URI VA VC VGR VM VN VON VOR VP VR VS VT VV WE WM WN WR WS WY XA XC XP ZZZ";

/// ISO 6523 ICD codes.
const ICD: &str = "0001 0002 0003 0004 0005 0006 0007 0008 0009 0010 0011 0012 0013 0014 0015 0016 0017 0018 0019 0020 0021 0022 0023 0024 0025 0026 0027 0028 0029 0030 0031 0032 0033 0034 0035 0036 0037 0038 0039 0040 0041 0042 0043 0044 0045 0046 0047 0048 0049 0050 0051 0052 0053 0054 0055 0056 0057 0058 0059 0060 0061 0062 0063 0064 0065 0066 0067 0068 0069 0070 0071 0072 0073 0074 0075 0076 0077 0078 0079 0080 0081 0082 0083 0084 0085 0086 0087 0088 0089 0090 0091 0093 0094 0095 0096 0097 0098 0099 0100 0101 0102 0104 0105 0106 0107 0108 0109 0110 0111 0112 0113 0114 0115 0116 0117 0118 0119 0120 0121 0122 0123 0124 0125 0126 0127 0128 0129 0130 0131 0132 0133 0134 0135 0136 0137 0138 0139 0140 0141 0142 0143 0144 0145 0146 0147 0148 0149 0150 0151 0152 0153 0154 0155 0156 0157 0158 0159 0160 0161 0162 0163 0164 0165 0166 0167 0168 0169 0170 0171 0172 0173 0174 0175 0176 0177 0178 0179 0180 0183 0184 0185 0186 0187 0188 0189 0190 0191 0192 0193 0194 0195 0196 0197 0198 0199 0200 0201 0202 0203 0204 0205 0206 0207 0208 0209 0210 0211 0212 0213 0214 0215 0216 0217 0218 0219 0220 0221 0222 0223 0224 0225 0226 0227 0228 0229 0230 0231 0232 0233 0234 0235 0236 0237 0238 0239 0240";

/// CEF EAS: electronic address schemes (BT-34, BT-49).
const EAS: &str = "0002 0007 0009 0037 0060 0088 0096 0097 0106 0130 0135 0142 0147 0151 0154 0158 0170 0177 0183 0184 0188 0190 0191 0192 0193 0194 0195 0196 0198 0199 0200 0201 0202 0203 0204 0205 0208 0209 0210 0211 0212 0213 0215 0216 0217 0218 0219 0220 0221 0225 0230 0235 0240 0242 0244 0246 0248 9901 9910 9913 9914 9915 9918 9919 9920 9922 9923 9924 9925 9926 9927 9928 9929 9930 9931 9932 9933 9934 9935 9936 9937 9938 9939 9940 9941 9942 9943 9944 9945 9946 9947 9948 9949 9950 9951 9952 9953 9957 9959 AN AQ AS AU EM";

/// MIME codes accepted for BT-125.
const MIME: &str = "application/pdf image/png image/jpeg text/csv application/vnd.openxmlformats-officedocument.spreadsheetml.sheet application/vnd.oasis.opendocument.spreadsheet";

/// CEF VATEX exemption reason codes (compared upper-cased).
const VATEX: &str = "VATEX-EU-79-C VATEX-EU-132 VATEX-EU-132-1A VATEX-EU-132-1B VATEX-EU-132-1C VATEX-EU-132-1D VATEX-EU-132-1E VATEX-EU-132-1F VATEX-EU-132-1G VATEX-EU-132-1H VATEX-EU-132-1I VATEX-EU-132-1J VATEX-EU-132-1K VATEX-EU-132-1L VATEX-EU-132-1M VATEX-EU-132-1N VATEX-EU-132-1O VATEX-EU-132-1P VATEX-EU-132-1Q VATEX-EU-143 VATEX-EU-143-1A VATEX-EU-143-1B VATEX-EU-143-1C VATEX-EU-143-1D VATEX-EU-143-1E VATEX-EU-143-1F VATEX-EU-143-1FA VATEX-EU-143-1G VATEX-EU-143-1H VATEX-EU-143-1I VATEX-EU-143-1J VATEX-EU-143-1K VATEX-EU-143-1L VATEX-EU-144 VATEX-EU-146-1E VATEX-EU-148 VATEX-EU-148-A VATEX-EU-148-B VATEX-EU-148-C VATEX-EU-148-D VATEX-EU-148-E VATEX-EU-148-F VATEX-EU-148-G VATEX-EU-151 VATEX-EU-151-1A VATEX-EU-151-1AA VATEX-EU-151-1B VATEX-EU-151-1C VATEX-EU-151-1D VATEX-EU-151-1E VATEX-EU-159 VATEX-EU-309 VATEX-EU-AE VATEX-EU-D VATEX-EU-F VATEX-EU-G VATEX-EU-I VATEX-EU-IC VATEX-EU-O VATEX-EU-J VATEX-FR-FRANCHISE VATEX-FR-CNWVAT";

fn in_list(list: &str, code: &str) -> bool {
    if code.is_empty() || code.contains(' ') {
        return false;
    }
    // Substring search (SIMD in core), then a whole-word check: no
    // per-token splitting of lists of hundreds of codes.
    let (l, c) = (list.as_bytes(), code.len());
    let mut from = 0;
    while let Some(i) = list.get(from..).and_then(|rest| rest.find(code)) {
        let at = from + i;
        let starts = at == 0 || l[at - 1] == b' ';
        let ends = at + c == l.len() || l[at + c] == b' ';
        if starts && ends {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Like the schematron: `normalize-space(.)` then a whole-word match.
fn known(list: &str, code: &str) -> bool {
    in_list(list, code.trim())
}

/// BR-CO-09: the VAT identifier starts with a country code (or EL).
pub(super) fn vat_prefix_ok(id: &str) -> bool {
    id.get(..2)
        .is_some_and(|p| p == "EL" || (p != "1A" && in_list(COUNTRIES, p)))
}

fn country(out: &mut Out, code: Option<&str>, bt: &'static str, what: &str) {
    if let Some(c) = code {
        if !known(COUNTRIES, c) {
            out.emit_on(
                "BR-CL-14",
                Some(bt),
                format!("The {what} country code ({bt}) '{c}' is not an ISO 3166-1 alpha-2 code."),
            );
        }
    }
}

fn icd(
    out: &mut Out,
    rule: &'static str,
    bt: &'static str,
    scheme: Option<&str>,
    what: &str,
    sepa_ok: bool,
) {
    if let Some(s) = scheme {
        if !(known(ICD, s) || (sepa_ok && s.trim() == "SEPA")) {
            out.emit_on(
                rule,
                Some(bt),
                format!("The scheme '{s}' of the {what} ({bt}) is not an ISO 6523 ICD code."),
            );
        }
    }
}

fn addr_country(a: &Option<crate::model::Address>) -> Option<&str> {
    a.as_ref().and_then(|a| a.country_code.as_deref())
}

pub(super) fn document(inv: &Invoice, scope: Scope, out: &mut Out) {
    if let Some(t) = inv.type_code.as_deref() {
        if !known(TYPE_CODES, t) {
            out.emit("BR-CL-01", format!("The invoice type code (BT-3) '{t}' is not an invoice or credit note code of UNTDID 1001 (e.g. 380 invoice, 381 credit note)."));
        }
    }
    if let Some(c) = inv.currency.as_deref() {
        if !known(CURRENCIES, c) {
            out.emit(
                "BR-CL-04",
                format!("The invoice currency code (BT-5) '{c}' is not an ISO 4217 code."),
            );
        }
    }
    if let Some(c) = inv.vat_currency.as_deref() {
        if !known(CURRENCIES, c) {
            out.emit(
                "BR-CL-05",
                format!("The VAT accounting currency code (BT-6) '{c}' is not an ISO 4217 code."),
            );
        }
    }
    if let Some(c) = inv.tax_point_date_code.as_deref() {
        let cii = matches!(inv.syntax, Some(Syntax::Cii) | Some(Syntax::FacturX));
        let list = if cii {
            TAX_POINT_CODES_CII
        } else {
            TAX_POINT_CODES
        };
        if !known(list, c) {
            let allowed = if cii { "5, 29, 72" } else { "3, 35, 432" };
            out.emit(
                "BR-CL-06",
                format!("The VAT point date code (BT-8) '{c}' is not one of {allowed}."),
            );
        }
    }
    if let Some(s) = inv
        .invoiced_object_id
        .as_ref()
        .and_then(|i| i.scheme.as_deref())
    {
        if !known(OBJECT_SCHEMES, s) {
            out.emit("BR-CL-07", format!("The scheme '{s}' of the invoiced object identifier (BT-18) is not a UNTDID 1153 code."));
        }
    }
    for id in &inv.seller.identifiers {
        icd(
            out,
            "BR-CL-10",
            "BT-29",
            id.scheme.as_deref(),
            "seller identifier",
            true,
        );
    }
    for id in &inv.buyer.identifiers {
        icd(
            out,
            "BR-CL-10",
            "BT-46",
            id.scheme.as_deref(),
            "buyer identifier",
            false,
        );
    }
    if let Some(p) = &inv.payee {
        if let Some(id) = &p.identifier {
            icd(
                out,
                "BR-CL-10",
                "BT-60",
                id.scheme.as_deref(),
                "payee identifier",
                true,
            );
        }
        if let Some(id) = &p.legal_registration_id {
            icd(
                out,
                "BR-CL-11",
                "BT-61",
                id.scheme.as_deref(),
                "payee legal registration identifier",
                false,
            );
        }
    }
    if let Some(id) = &inv.seller.legal_registration_id {
        icd(
            out,
            "BR-CL-11",
            "BT-30",
            id.scheme.as_deref(),
            "seller legal registration identifier",
            false,
        );
    }
    if let Some(id) = &inv.buyer.legal_registration_id {
        icd(
            out,
            "BR-CL-11",
            "BT-47",
            id.scheme.as_deref(),
            "buyer legal registration identifier",
            false,
        );
    }
    country(out, addr_country(&inv.seller.address), "BT-40", "seller");
    country(out, addr_country(&inv.buyer.address), "BT-55", "buyer");
    if let Some(r) = &inv.tax_representative {
        country(out, addr_country(&r.address), "BT-69", "tax representative");
    }
    if let Some(d) = &inv.delivery {
        country(out, addr_country(&d.address), "BT-80", "deliver-to");
    }
    for (party, bt, what) in [
        (&inv.seller, "BT-34", "seller"),
        (&inv.buyer, "BT-49", "buyer"),
    ] {
        if let Some(s) = party
            .electronic_address
            .as_ref()
            .and_then(|e| e.scheme.as_deref())
        {
            if !known(EAS, s) {
                out.emit_on(
                    "BR-CL-25",
                    Some(bt),
                    format!("The scheme '{s}' of the {what} electronic address ({bt}) is not in the CEF EAS list (e.g. 0088 GLN, 0009 SIRET, EM e-mail)."),
                );
            }
        }
    }
    if let Some(id) = inv.delivery.as_ref().and_then(|d| d.location_id.as_ref()) {
        icd(
            out,
            "BR-CL-26",
            "BT-71",
            id.scheme.as_deref(),
            "deliver-to location identifier",
            false,
        );
    }
    let means = inv.payment.iter().flat_map(|p| {
        std::iter::once(p.means_code.as_deref())
            .chain(p.further_means.iter().map(|m| m.code.as_deref()))
            .flatten()
    });
    for m in means {
        if !known(PAYMENT_MEANS, m) {
            out.emit("BR-CL-16", format!("The payment means code (BT-81) '{m}' is not a UNCL 4461 code (e.g. 30 credit transfer, 58 SEPA credit transfer)."));
        }
    }
    if scope.vat_breakdown {
        for (i, b) in inv.vat_breakdown.iter().enumerate() {
            if let Some(c) = b.category.as_deref() {
                if !known(VAT_CATEGORIES, c) {
                    out.emit_on("BR-CL-17", Some("BT-118"), format!("VAT breakdown {} has the VAT category code '{c}', which is not one of S, Z, E, AE, K, G, O, L, M, B.", i + 1));
                }
            }
            if let Some(c) = b.exemption_reason_code.as_deref() {
                if !known(VATEX, &c.to_uppercase()) {
                    out.emit("BR-CL-22", format!("The VAT exemption reason code (BT-121) '{c}' of VAT breakdown {} is not a VATEX code.", i + 1));
                }
            }
        }
        for (list, what, cat_bt, code_bt, reasons, rule) in [
            (
                &inv.allowances,
                "allowance",
                "BT-95",
                "BT-98",
                ALLOWANCE_REASONS,
                "BR-CL-19",
            ),
            (
                &inv.charges,
                "charge",
                "BT-102",
                "BT-105",
                CHARGE_REASONS,
                "BR-CL-20",
            ),
        ] {
            for (i, ac) in list.iter().enumerate() {
                if let Some(c) = ac.vat_category.as_deref() {
                    if !known(VAT_CATEGORIES, c) {
                        out.emit_on("BR-CL-17", Some(cat_bt), format!("Document level {what} {} has the VAT category code '{c}', which is not one of S, Z, E, AE, K, G, O, L, M, B.", i + 1));
                    }
                }
                if let Some(r) = ac.reason_code.as_deref() {
                    if !known(reasons, r) {
                        out.emit_on(rule, Some(code_bt), format!("The reason code '{r}' of document level {what} {} is not in the {} list.", i + 1, if rule == "BR-CL-19" { "UNCL 5189" } else { "UNCL 7161" }));
                    }
                }
            }
        }
    }
    for (i, a) in inv.attachments.iter().enumerate() {
        if let Some(m) = a.mime_code.as_deref() {
            if !known(MIME, m) {
                out.emit("BR-CL-24", format!("Supporting document {} is of type '{m}'; only PDF, PNG, JPEG, CSV, XLSX and ODS may be attached.", i + 1));
            }
        }
    }
}

pub(super) fn line(l: &Line, at: LineRef<'_>, out: &mut Out) {
    if let Some(c) = l.vat_category.as_deref() {
        if !known(VAT_CATEGORIES, c) {
            out.emit("BR-CL-18", format!("Invoice {at} has the VAT category code (BT-151) '{c}', which is not one of S, Z, E, AE, K, G, O, L, M, B."));
        }
    }
    for (list, what, code_bt, reasons, rule) in [
        (
            &l.allowances,
            "allowance",
            "BT-140",
            ALLOWANCE_REASONS,
            "BR-CL-19",
        ),
        (&l.charges, "charge", "BT-145", CHARGE_REASONS, "BR-CL-20"),
    ] {
        for (i, ac) in list.iter().enumerate() {
            if let Some(r) = ac.reason_code.as_deref() {
                if !known(reasons, r) {
                    out.emit_on(
                        rule,
                        Some(code_bt),
                        format!(
                            "The reason code '{r}' of {what} {} on {at} is not in the {} list.",
                            i + 1,
                            if rule == "BR-CL-19" {
                                "UNCL 5189"
                            } else {
                                "UNCL 7161"
                            }
                        ),
                    );
                }
            }
        }
    }
    for c in &l.classifications {
        if let Some(s) = c.scheme.as_deref() {
            if !known(CLASSIFICATION_SCHEMES, s) {
                out.emit("BR-CL-13", format!("The scheme '{s}' of the item classification (BT-158) on {at} is not a UNTDID 7143 code."));
            }
        }
    }
    if let Some(s) = l
        .standard_item_id
        .as_ref()
        .and_then(|i| i.scheme.as_deref())
    {
        if !known(ICD, s) {
            out.emit("BR-CL-21", format!("The scheme '{s}' of the item standard identifier (BT-157) on {at} is not an ISO 6523 ICD code."));
        }
    }
    if let Some(c) = l.origin_country.as_deref() {
        if !known(COUNTRIES, c) {
            out.emit("BR-CL-15", format!("The country of origin (BT-159) '{c}' on {at} is not an ISO 3166-1 alpha-2 code."));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::in_list;

    #[test]
    fn in_list_matches_whole_codes_only() {
        let list = "VATEX-EU-132 VATEX-EU-132-1A S Z AE";
        assert!(in_list(list, "VATEX-EU-132"));
        assert!(in_list(list, "VATEX-EU-132-1A"));
        assert!(in_list(list, "S"));
        assert!(in_list(list, "AE"));
        // a prefix, a suffix or the middle of a code is not a code
        assert!(!in_list(list, "VATEX-EU-13"));
        assert!(!in_list(list, "132-1A"));
        assert!(!in_list(list, "E"));
        assert!(!in_list(list, "A"));
        assert!(!in_list(list, ""));
        assert!(!in_list(list, "S Z"));
        assert!(!in_list(list, "é"));
        assert!(!in_list("é S", "S é"));
        assert!(in_list("é S", "S"));
    }
}
